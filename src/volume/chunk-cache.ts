// Decrypted chunks in memory, bounded in bytes. Concurrent reads of one chunk share one fetch
// (lru-cache's fetch). Sequential readers load whole chunks; random readers load only the 64 KiB
// AEAD blocks they touch, through an HTTP Range request. Inline chunks (small files, kept in the
// metadata) are already in memory and are served as they are.
import { LRUCache } from 'lru-cache'
import { BLOCK_SIZE, blockSpan, openBlocks, openChunk } from '../crypto'
import { BlobRef, ChunkRef, isBlobRef } from './namespace'
import { VolumeStore } from './store'

interface FetchContext {
  fileId: Buffer
  index: number
  ref: BlobRef
  block?: number
}

/** Cache key of a whole chunk is its blob id; of one block, `id/block`. */
const blockKey = (id: string, block: number) => `${id}/${block}`

export class ChunkCache {
  private readonly lru: LRUCache<string, Buffer, FetchContext>

  constructor(private readonly store: VolumeStore, private readonly key: Buffer, maxBytes: number) {
    this.lru = new LRUCache<string, Buffer, FetchContext>({
      maxSize: Math.max(maxBytes, 1),
      sizeCalculation: (v) => Math.max(v.length, 1),
      fetchMethod: (_k, _stale, { context }) => this.load(context),
      // A fetch in flight is evicted when the cache fills around it; its reader still wants the bytes.
      ignoreFetchAbort: true,
    })
  }

  get bytes(): number {
    return this.lru.calculatedSize
  }

  /** The whole plaintext of a chunk (ref.len bytes). */
  async chunk(fileId: Buffer, index: number, ref: ChunkRef): Promise<Buffer> {
    if (!isBlobRef(ref)) return ref.inline
    const v = await this.lru.fetch(ref.id, { context: { fileId, index, ref } })
    return v!
  }

  /** Plaintext bytes [start, end) of a chunk, fetching only the blocks needed unless the chunk is cached. */
  async range(fileId: Buffer, index: number, ref: ChunkRef, start: number, end: number): Promise<Buffer> {
    if (!isBlobRef(ref)) return ref.inline.subarray(start, end)
    const whole = this.lru.get(ref.id)
    if (whole) return whole.subarray(start, end)
    const span = blockSpan(start, end, ref.blob ?? ref.len)
    const blocks = await Promise.all(
      Array.from({ length: span.lastBlock - span.firstBlock + 1 }, (_, k) => {
        const block = span.firstBlock + k
        return this.lru.fetch(blockKey(ref.id, block), { context: { fileId, index, ref, block } }) as Promise<Buffer>
      }),
    )
    const joined = blocks.length === 1 ? blocks[0]! : Buffer.concat(blocks)
    const offset = span.firstBlock * BLOCK_SIZE
    return joined.subarray(start - offset, end - offset)
  }

  /** Starts loading a chunk in the background (read-ahead); errors surface on the real read. */
  prefetch(fileId: Buffer, index: number, ref: ChunkRef): void {
    if (!isBlobRef(ref) || this.lru.has(ref.id)) return
    this.lru.fetch(ref.id, { context: { fileId, index, ref } }).catch(() => undefined)
  }

  /** Seeds the cache with a chunk just written (its plaintext is known). */
  put(ref: BlobRef, plain: Buffer): void {
    this.lru.set(ref.id, plain)
  }

  private async load(ctx: FetchContext): Promise<Buffer> {
    const { fileId, index, ref } = ctx
    if (ctx.block === undefined) {
      const sealed = await this.store.get(ref.id)
      return openChunk(this.key, fileId, index, sealed)
    }
    const blobLen = ref.blob ?? ref.len
    const span = blockSpan(ctx.block * BLOCK_SIZE, Math.min((ctx.block + 1) * BLOCK_SIZE, blobLen), blobLen)
    return this.store.getRange(ref.id, { start: span.sealedStart, end: span.sealedEnd }, (bytes) =>
      openBlocks(this.key, fileId, index, blobLen, ctx.block!, bytes),
    )
  }
}
