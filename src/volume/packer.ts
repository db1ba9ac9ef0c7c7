// Small chunks of many files share one blob, a "pack": a cp -r of small files then costs one
// upload per ~4 MiB on each server instead of one per file (measured before packs: two HTTP PUTs
// per file made the daemon and the servers CPU-bound at ~590 files/s, ~2 ms of server CPU per
// file). Each chunk is sealed exactly as when it is stored alone (AEAD blocks bound to its file
// id and chunk index) and placed at an offset in the pack; its ref names the pack and the offset,
// and a read is a Range request of its sealed bytes. A pack is garbage once no chunk in it is
// referenced any more (gc keeps a blob while any ref names it); its dead pieces take space until
// then — docs/volume.md says what that costs.
import { blobId } from '../crypto'
import { Semaphore } from './semaphore'
import { VolumeStore } from './store'

/** Chunks of at most this many plaintext bytes go into packs (never a full chunk). */
export const PACK_PIECE_MAX = 256 * 1024
/** A pack is stored once it holds this many bytes, */
export const PACK_TARGET_BYTES = 4 * 1024 * 1024
/** or this long after its first piece, or as soon as a commit waits for it (flushSoon). */
export const PACK_MAX_DELAY_MS = 100

interface Piece {
  sealed: Buffer
  at: number
  resolve: (where: { id: string; at: number }) => void
  reject: (err: Error) => void
}

export class Packer {
  private pieces: Piece[] = []
  private bytes = 0
  private timer: NodeJS.Timeout | null = null
  private soon = false

  constructor(private readonly store: VolumeStore, private readonly uploads: Semaphore) {}

  /** Adds a sealed chunk; resolves with the pack's id and the chunk's offset once the pack is stored. */
  add(sealed: Buffer): Promise<{ id: string; at: number }> {
    return new Promise((resolve, reject) => {
      this.pieces.push({ sealed, at: this.bytes, resolve, reject })
      this.bytes += sealed.length
      if (this.bytes >= PACK_TARGET_BYTES) this.flush()
      else if (!this.timer) this.timer = setTimeout(() => this.flush(), PACK_MAX_DELAY_MS)
    })
  }

  /** Stores the pack being filled once the chunks on their way to it now have arrived (a commit waits). */
  flushSoon(): void {
    if (this.soon) return
    this.soon = true
    setImmediate(() => {
      this.soon = false
      this.flush()
    })
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = null
    if (this.pieces.length === 0) return
    const pieces = this.pieces
    this.pieces = []
    this.bytes = 0
    const pack = pieces.length === 1 ? pieces[0]!.sealed : Buffer.concat(pieces.map((p) => p.sealed))
    this.uploads
      .run(async () => {
        const id = await blobId(pack)
        await this.store.put(id, pack)
        return id
      })
      .then(
        (id) => pieces.forEach((p) => p.resolve({ id, at: p.at })),
        (err: Error) => pieces.forEach((p) => p.reject(err)),
      )
  }
}
