// The volume's metadata on the servers: a head record (sealed, compare-and-swap on several servers)
// names the latest checkpoint (the whole namespace, sealed, in pieces) and the journal blobs
// written after it. docs/volume.md describes the formats.
import { randomBytes } from 'node:crypto'
import { VolumeKeys, blobId, openMeta, recordName, sealMeta } from '../crypto'
import { Entry, Namespace, SerializedInode } from './namespace'
import { ReplicatedRecord } from './replicated-record'
import { VolumeStore, metadataCopies } from './store'

/**
 * Metadata format versions this code reads. 1: the first release. 2: inode numbers, sparse chunk
 * lists in checkpoints ('parts'), special files and extended attributes ('xattr' entries). Every
 * head this code writes carries HEAD_VERSION; a format-1 volume is upgraded by its next writer.
 */
export const HEAD_VERSION = 2
const READABLE_VERSIONS: readonly number[] = [1, 2]

export interface Head {
  format: 'edfs-volume'
  version: number
  volumeId: string
  /** Bumped by every commit. */
  seq: number
  rootId: string
  chunkSize: number
  replicas: number
  checkpoint: { seq: number; pieces: string[] }
  journal: string[]
  journalBytes: number
  /**
   * Entries committed after the last journal blob, carried inline: a small commit costs one write of
   * the head instead of a journal blob and then the head. Moved into a blob past TAIL_MAX_BYTES.
   */
  tail?: Entry[]
  tailBytes?: number
  updatedAt: number
  /** Random id of the writer that wrote this head: its own earlier write is not another writer's. */
  writer?: string
}

/** A metadata blob could not be read or opened: the volume cannot be loaded past it. */
export class MetadataError extends Error {
  constructor(message: string, readonly blob?: string) {
    super(message)
    this.name = 'MetadataError'
  }
}

/** The volume's head moved on under a writer: another writer took over. */
export class HeadMovedError extends Error {
  constructor() {
    super('the volume was changed by another writer (lease lost); this mount can no longer commit')
    this.name = 'HeadMovedError'
  }
}

export const CHECKPOINT_PIECE_BYTES = 4 * 1024 * 1024
/** A checkpoint is written once the journal holds this many blobs or bytes. */
export const CHECKPOINT_AFTER_BLOBS = 256
export const CHECKPOINT_AFTER_BYTES = 16 * 1024 * 1024
/** Most bytes of entries carried inline in the head. */
export const TAIL_MAX_BYTES = 64 * 1024

/** Refuses a head this code cannot read, before anything of the volume is interpreted. */
export function checkHead(head: Head): void {
  if (head.format !== 'edfs-volume') throw new MetadataError(`the volume head has an unknown format ${JSON.stringify(head.format)}`)
  if (!READABLE_VERSIONS.includes(head.version)) {
    throw new MetadataError(
      `the volume has metadata format version ${JSON.stringify(head.version)}, and this edfs reads versions ${READABLE_VERSIONS.join(', ')}: ` +
        (typeof head.version === 'number' && head.version > HEAD_VERSION ? 'upgrade edfs to use it' : 'the head is damaged'),
    )
  }
}

export interface LoadResult {
  log: MetadataLog
  ns: Namespace
  /** Set when a journal blob was unreadable and the load stopped before it (read-only loads only). */
  truncatedAt?: MetadataError
}

export class MetadataLog {
  /** This writer's id, written into every head it writes. */
  private readonly writer = randomBytes(8).toString('hex')

  private constructor(
    private readonly store: VolumeStore,
    private readonly keys: VolumeKeys,
    private readonly record: ReplicatedRecord<Head>,
    private current: Head,
  ) {}

  static headRecord(store: VolumeStore, keys: VolumeKeys): ReplicatedRecord<Head> {
    return new ReplicatedRecord<Head>(store, recordName(keys.names, 'head'), keys.metadata, metadataCopies(store))
  }

  get head(): Head {
    return this.current
  }

  /** Whether the volume is of an older format that its next writer must upgrade (a checkpoint). */
  get upgradeNeeded(): boolean {
    return this.current.version < HEAD_VERSION || this.numbered > 0
  }

  /** Inodes that the last build had to number (format 1 stored no inode numbers). */
  private numbered = 0

  /** Writes a new volume: its first checkpoint holds `ns`. */
  static async create(store: VolumeStore, keys: VolumeKeys, ns: Namespace, params: { volumeId: string; replicas: number }): Promise<MetadataLog> {
    const record = MetadataLog.headRecord(store, keys)
    const existing = await MetadataLog.latest(record)
    if (existing) throw new Error(`a volume already exists here (id ${existing.volumeId})`)
    ns.takePending()
    const head: Head = {
      format: 'edfs-volume', version: HEAD_VERSION, volumeId: params.volumeId, seq: 0, rootId: ns.rootId, chunkSize: ns.chunkSize, replicas: params.replicas,
      checkpoint: { seq: 0, pieces: [] }, journal: [], journalBytes: 0, updatedAt: Date.now(),
    }
    const log = new MetadataLog(store, keys, record, head)
    await log.checkpoint(ns)
    return log
  }

  /** The newest head among the reachable copies, or null when there is none. */
  static async latest(record: ReplicatedRecord<Head>): Promise<Head | null> {
    const copies = await record.readAll()
    let best: Head | null = null
    for (const c of copies) if (c.value && (!best || c.value.seq > best.seq)) best = c.value
    if (!best) {
      const broken = copies.find((c) => c.error)
      if (broken) throw new MetadataError(`the volume head on server ${broken.server} cannot be opened: ${broken.error!.message}`)
    }
    return best
  }

  /** Loads the namespace: the checkpoint, then the journal after it. */
  static async load(store: VolumeStore, keys: VolumeKeys, opts: { tolerateBrokenJournal?: boolean } = {}): Promise<LoadResult> {
    const record = MetadataLog.headRecord(store, keys)
    const head = await MetadataLog.latest(record)
    if (!head) throw new MetadataError('no volume found on the servers (run `edfs init` first)')
    checkHead(head)
    const log = new MetadataLog(store, keys, record, head)
    const { ns, truncatedAt } = await log.build(head, opts.tolerateBrokenJournal ?? false)
    return { log, ns, truncatedAt }
  }

  /** Reader: if the head moved on, returns the namespace at the new head (or null when unchanged). */
  async refresh(ns: Namespace): Promise<Namespace | null> {
    const head = await MetadataLog.latest(this.record)
    if (!head || head.seq <= this.current.seq) return null
    checkHead(head)
    const sameCheckpoint = head.checkpoint.seq === this.current.checkpoint.seq && this.current.journal.every((id, k) => head.journal[k] === id)
    let next: Namespace
    if (sameCheckpoint) {
      // The new entries start with our old tail (moved into a blob, or still inline): skip it.
      const { entries } = await this.readJournal(head.journal.slice(this.current.journal.length), false)
      for (const e of [...entries, ...(head.tail ?? [])].slice(this.current.tail?.length ?? 0)) ns.apply(e)
      ns.numberInodes()
      next = ns
    } else next = (await this.build(head, true)).ns
    this.current = head
    return next
  }

  /**
   * Commits `entries`: inline in the head while the tail stays small, else sealed into one journal
   * blob (with the tail before them) that the head then names.
   */
  async append(entries: Entry[]): Promise<void> {
    const seq = this.current.seq + 1
    const bytes = Buffer.byteLength(JSON.stringify(entries))
    const tail = this.current.tail ?? []
    const tailBytes = (this.current.tailBytes ?? 0) + bytes
    if (tailBytes <= TAIL_MAX_BYTES) {
      await this.advance({ ...this.current, seq, tail: [...tail, ...entries], tailBytes, updatedAt: Date.now() })
      return
    }
    const sealed = sealMeta(this.keys.metadata, this.context('journal'), Buffer.from(JSON.stringify({ seq, entries: [...tail, ...entries] })))
    const id = await blobId(sealed)
    await this.store.put(id, sealed, metadataCopies(this.store))
    await this.advance({
      ...this.current, seq, journal: [...this.current.journal, id], tail: [], tailBytes: 0,
      journalBytes: this.current.journalBytes + sealed.length, updatedAt: Date.now(),
    })
  }

  needsCheckpoint(): boolean {
    return this.current.journal.length >= CHECKPOINT_AFTER_BLOBS || this.current.journalBytes >= CHECKPOINT_AFTER_BYTES
  }

  /** Seals the whole namespace into pieces and restarts the journal after it. */
  async checkpoint(ns: Namespace): Promise<void> {
    const seq = this.current.seq + 1
    const plain = Buffer.from(JSON.stringify(ns.serialize()))
    const pieces: string[] = []
    const uploads: Promise<unknown>[] = []
    for (let off = 0, k = 0; off < plain.length || k === 0; off += CHECKPOINT_PIECE_BYTES, k++) {
      const sealed = sealMeta(this.keys.metadata, this.context(`checkpoint/${seq}/${k}`), plain.subarray(off, off + CHECKPOINT_PIECE_BYTES))
      const id = await blobId(sealed)
      pieces.push(id)
      uploads.push(this.store.put(id, sealed, metadataCopies(this.store)))
    }
    await Promise.all(uploads)
    await this.advance({ ...this.current, seq, checkpoint: { seq, pieces }, journal: [], journalBytes: 0, tail: [], tailBytes: 0, updatedAt: Date.now() })
  }

  /** Every blob the current head refers to (kept by gc). */
  blobs(): string[] {
    return [...this.current.checkpoint.pieces, ...this.current.journal]
  }

  private async advance(next: Head): Promise<void> {
    const prevSeq = this.current.seq
    try {
      // A copy may be replaced when it is older (a server that missed commits) or ours (a write whose
      // answer was lost, e.g. a timeout after the server had stored it).
      next = { ...next, version: HEAD_VERSION, writer: this.writer }
      await this.record.write(next, (copy) =>
        !copy || (copy.volumeId === next.volumeId && (copy.seq <= prevSeq || copy.writer === this.writer)))
    } catch (err) {
      if ((err as Error).name === 'RecordConflictError') throw new HeadMovedError()
      throw err
    }
    this.current = next
    this.numbered = 0
  }

  private context(what: string): string {
    return `${this.current.volumeId}/${what}`
  }

  private async build(head: Head, tolerateBrokenJournal: boolean): Promise<{ ns: Namespace; truncatedAt?: MetadataError }> {
    const saved = this.current
    this.current = head
    try {
      const parts = await this.fetchAll(head.checkpoint.pieces)
      const plain = Buffer.concat(
        parts.map((sealed, k) => this.openBlob(head.checkpoint.pieces[k]!, sealed, `checkpoint/${head.checkpoint.seq}/${k}`)),
      )
      let inodes: SerializedInode[]
      try {
        inodes = JSON.parse(plain.toString('utf8')) as SerializedInode[]
      } catch {
        throw new MetadataError('the checkpoint is not valid JSON')
      }
      const ns = Namespace.deserialize(head.rootId, head.chunkSize, inodes)
      const { entries, error } = await this.readJournal(head.journal, tolerateBrokenJournal)
      for (const e of error ? entries : [...entries, ...(head.tail ?? [])]) ns.apply(e)
      this.numbered = ns.numberInodes()
      return { ns, truncatedAt: error }
    } finally {
      this.current = saved
    }
  }

  /** The entries of journal blobs, in order; a broken blob stops the load (or, when tolerated, the reading). */
  private async readJournal(ids: string[], tolerate: boolean): Promise<{ entries: Entry[]; error?: MetadataError }> {
    const out: Entry[] = []
    let blobs: Buffer[] = []
    let fetchError: MetadataError | undefined
    try {
      blobs = await this.fetchAll(ids)
    } catch (err) {
      if (!tolerate || !(err instanceof MetadataError)) throw err
      // Find the first unreadable blob: everything before it still applies.
      for (const id of ids) {
        try {
          blobs.push((await this.fetchAll([id]))[0]!)
        } catch (e) {
          fetchError = e as MetadataError
          break
        }
      }
    }
    for (let k = 0; k < ids.length; k++) {
      if (k === blobs.length) return { entries: out, error: fetchError }
      let entries: Entry[]
      try {
        const body = JSON.parse(this.openBlob(ids[k]!, blobs[k]!, 'journal').toString('utf8')) as { entries: Entry[] }
        entries = body.entries
      } catch (err) {
        const e = err instanceof MetadataError ? err : new MetadataError(`journal blob ${ids[k]} is not valid`, ids[k])
        if (tolerate) return { entries: out, error: e }
        throw e
      }
      out.push(...entries)
    }
    return { entries: out }
  }

  private async fetchAll(ids: string[]): Promise<Buffer[]> {
    if (ids.length === 0) return []
    let got: Map<string, Buffer>
    try {
      got = await this.store.getMany(ids)
    } catch (err) {
      throw new MetadataError(`metadata unreadable: ${(err as Error).message}`, (err as { id?: string }).id)
    }
    return ids.map((id) => {
      const b = got.get(id)
      if (!b) throw new MetadataError(`metadata blob ${id} is missing on every server`, id)
      return b
    })
  }

  private openBlob(id: string, sealed: Buffer, what: string): Buffer {
    try {
      return openMeta(this.keys.metadata, this.context(what), sealed)
    } catch (err) {
      throw new MetadataError(`metadata blob ${id} (${what}) is corrupt or truncated: ${(err as Error).message}`, id)
    }
  }
}
