// The volume's metadata on the servers: a head record (sealed, compare-and-swap on several servers)
// names the latest checkpoint (the whole namespace, sealed, in pieces) and the journal blobs
// written after it. docs/volume.md describes the formats.
import { randomBytes } from 'node:crypto'
import { VolumeKeys, blobId, openMeta, recordName, sealMeta } from '../crypto'
import { Entry, Namespace, SerializedInode } from './namespace'
import { RecordConflictError, ReplicatedRecord } from './replicated-record'
import { VolumeStore, metadataCopies } from './store'

/**
 * Metadata format versions this code reads. 1: the first release. 2: inode numbers, sparse chunk
 * lists in checkpoints ('parts'), special files and extended attributes ('xattr' entries). 3:
 * salted sealings and sliced chunks (a base under newer slices) in chunk refs. Every head this code
 * writes carries HEAD_VERSION; a format-1 volume is upgraded by its next writer.
 */
export const HEAD_VERSION = 3
const READABLE_VERSIONS: readonly number[] = [1, 2, 3]

export interface Head {
  format: 'edfs-volume'
  version: number
  volumeId: string
  /** Bumped by every commit. */
  seq: number
  rootId: string
  chunkSize: number
  replicas: number
  /** `bytes` (format 3): the sealed size of its pieces, which decides when the next one pays. */
  checkpoint: { seq: number; pieces: string[]; bytes?: number }
  /** Journal blobs after the checkpoint, by id (formats 1 and 2; a format-3 writer adds none here). */
  journal: string[]
  /**
   * Format 3: the newest journal blob after those in `journal`; each names the one before it
   * (`prev`), so the head stays small however long the journal grows.
   */
  journalTip?: string
  /** Format 3: how many journal blobs there are in all (`journal` and the chain). */
  journalBlobs?: number
  journalBytes: number
  /**
   * Entries committed after the last journal blob, carried inline: a small commit costs one write of
   * the head instead of a journal blob and then the head. Moved into a blob past TAIL_MAX_BYTES.
   */
  tail?: Entry[]
  tailBytes?: number
  /** Format 3: how many commits the tail holds. */
  tailCommits?: number
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
/** A checkpoint is written once the journal holds this many blobs and as many bytes as the last checkpoint, */
export const CHECKPOINT_AFTER_BLOBS = 256
/** and always at this many blobs (a load walks the chain one fetch per blob). */
export const CHECKPOINT_MAX_BLOBS = 2048
/** or this many bytes. */
export const CHECKPOINT_AFTER_BYTES = 16 * 1024 * 1024
/** Most bytes of entries carried inline in the head. */
export const TAIL_MAX_BYTES = 16 * 1024
/** Commits the inline tail carries at most before it moves into a journal blob. */
export const TAIL_MAX_COMMITS = 2

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

/** A journal blob's contents; `prev` (format 3) is the blob before it in the chain, null for the first. */
interface JournalBody {
  seq: number
  entries: Entry[]
  prev?: string | null
}

export class MetadataLog {
  /** This writer's id, written into every head it writes. */
  private readonly writer = randomBytes(8).toString('hex')
  /** Every journal blob of the current head, in order (the head names only the chain's tip). */
  private journalIds: string[] = []

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
    const newer = sameCheckpoint ? await this.journalAfter(head, this.journalIds) : null
    if (newer) {
      // The new entries start with our old tail (moved into a blob, or still inline): skip it.
      for (const e of [...newer.entries, ...(head.tail ?? [])].slice(this.current.tail?.length ?? 0)) ns.apply(e)
      ns.numberInodes()
      this.journalIds = newer.ids
      next = ns
    } else next = (await this.build(head, true)).ns
    this.current = head
    return next
  }

  /**
   * Commits `entries`: inline in the head while the tail stays small and young, else sealed into
   * one journal blob (with the tail before them) that the head then names. Every commit rewrites
   * the head on several servers, so a tail carried along costs its size at each commit: after
   * TAIL_MAX_COMMITS it is cheaper stored once in a blob (an fsync-heavy load measured 25 bytes of
   * head per byte written with a 64 KiB tail, 1 with this rule).
   */
  async append(entries: Entry[]): Promise<void> {
    const seq = this.current.seq + 1
    const bytes = Buffer.byteLength(JSON.stringify(entries))
    const tail = this.current.tail ?? []
    const tailBytes = (this.current.tailBytes ?? 0) + bytes
    const tailCommits = (this.current.tailCommits ?? 0) + 1
    if (tailBytes <= TAIL_MAX_BYTES && tailCommits <= TAIL_MAX_COMMITS) {
      await this.advance({ ...this.current, seq, tail: [...tail, ...entries], tailBytes, tailCommits, updatedAt: Date.now() })
      return
    }
    const body: JournalBody = { seq, entries: [...tail, ...entries], prev: this.current.journalTip ?? null }
    const sealed = sealMeta(this.keys.metadata, this.context('journal'), Buffer.from(JSON.stringify(body)))
    const id = await blobId(sealed)
    await this.store.put(id, sealed, metadataCopies(this.store))
    await this.advance({
      ...this.current, seq, journalTip: id, journalBlobs: this.journalIds.length + 1, tail: [], tailBytes: 0, tailCommits: 0,
      journalBytes: this.current.journalBytes + sealed.length, updatedAt: Date.now(),
    })
    this.journalIds = [...this.journalIds, id]
  }

  needsCheckpoint(): boolean {
    const blobs = this.journalIds.length
    const journal = this.current.journalBytes
    if (blobs >= CHECKPOINT_MAX_BLOBS || journal >= CHECKPOINT_AFTER_BYTES) return true
    // A checkpoint costs the whole namespace (inline small files included) on 3 servers: write it
    // once the journal is as big as it, so its cost stays below the journal's own.
    return blobs >= CHECKPOINT_AFTER_BLOBS && journal >= (this.current.checkpoint.bytes ?? 0)
  }

  /** Seals the whole namespace into pieces and restarts the journal after it. */
  async checkpoint(ns: Namespace): Promise<void> {
    const seq = this.current.seq + 1
    const plain = Buffer.from(JSON.stringify(ns.serialize()))
    const pieces: string[] = []
    const uploads: Promise<unknown>[] = []
    let bytes = 0
    for (let off = 0, k = 0; off < plain.length || k === 0; off += CHECKPOINT_PIECE_BYTES, k++) {
      const sealed = sealMeta(this.keys.metadata, this.context(`checkpoint/${seq}/${k}`), plain.subarray(off, off + CHECKPOINT_PIECE_BYTES))
      const id = await blobId(sealed)
      pieces.push(id)
      bytes += sealed.length
      uploads.push(this.store.put(id, sealed, metadataCopies(this.store)))
    }
    await Promise.all(uploads)
    await this.advance({
      ...this.current, seq, checkpoint: { seq, pieces, bytes }, journal: [], journalTip: undefined, journalBlobs: 0, journalBytes: 0, tail: [], tailBytes: 0, tailCommits: 0, updatedAt: Date.now(),
    })
    this.journalIds = []
  }

  /** Every blob the current head refers to (kept by gc). */
  blobs(): string[] {
    return [...this.current.checkpoint.pieces, ...this.journalIds]
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
      if (err instanceof RecordConflictError) throw new HeadMovedError()
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
      const listed = await this.readJournal(head.journal, tolerateBrokenJournal)
      let entries = listed.entries
      let error = listed.error
      let ids = head.journal
      if (!error && head.journalTip) {
        try {
          const chain = await this.readChain(head.journalTip, null)
          entries = [...entries, ...chain.entries]
          ids = [...ids, ...chain.ids]
        } catch (err) {
          // A broken blob in the chain hides the blobs before it: a reader can show the state
          // without the chain (the checkpoint and any listed journal), an earlier commit.
          if (!tolerateBrokenJournal || !(err instanceof MetadataError)) throw err
          error = err
        }
      }
      for (const e of error ? entries : [...entries, ...(head.tail ?? [])]) ns.apply(e)
      this.numbered = ns.numberInodes()
      this.journalIds = ids
      return { ns, truncatedAt: error }
    } finally {
      this.current = saved
    }
  }

  /**
   * The journal blobs of `head` past `known` (a prefix of its journal), with their entries, or null
   * when `head`'s journal does not continue `known` (then the whole namespace is rebuilt).
   */
  private async journalAfter(head: Head, known: string[]): Promise<{ ids: string[]; entries: Entry[] } | null> {
    const listed = known.slice(0, head.journal.length)
    if (!listed.every((id, k) => head.journal[k] === id)) return null
    const fromList = head.journal.slice(listed.length)
    const { entries } = await this.readJournal(fromList, false)
    const chained = known.slice(head.journal.length)
    if (!head.journalTip) return chained.length === 0 ? { ids: head.journal, entries } : null
    const stop = chained.length > 0 ? chained[chained.length - 1]! : null
    if (stop === head.journalTip) return { ids: [...head.journal, ...chained], entries }
    const chain = await this.readChain(head.journalTip, stop, head.journalBlobs)
    if (stop !== null && !chain.reachedStop) return null
    return { ids: [...head.journal, ...chained, ...chain.ids], entries: [...entries, ...chain.entries] }
  }

  /** Walks the chain back from `tip` to `stop` (exclusive; null: its start); ids and entries in order. */
  private async readChain(tip: string, stop: string | null, limit = Infinity): Promise<{ ids: string[]; entries: Entry[]; reachedStop: boolean }> {
    const bodies: { id: string; body: JournalBody }[] = []
    let id: string | null = tip
    while (id !== null && id !== stop) {
      if (bodies.length > Math.min(limit, CHECKPOINT_MAX_BLOBS * 4)) throw new MetadataError('the journal chain is longer than its head says', id)
      const [sealed] = await this.fetchAll([id])
      let body: JournalBody
      try {
        body = JSON.parse(this.openBlob(id, sealed!, 'journal').toString('utf8')) as JournalBody
      } catch (err) {
        throw err instanceof MetadataError ? err : new MetadataError(`journal blob ${id} is not valid`, id)
      }
      bodies.push({ id, body })
      id = body.prev ?? null
    }
    bodies.reverse()
    return { ids: bodies.map((b) => b.id), entries: bodies.flatMap((b) => b.body.entries), reachedStop: id === stop }
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

/** The newest volume head the servers hold (null: no volume there), e.g. to attach to a volume. */
export function readVolumeHead(store: VolumeStore, keys: VolumeKeys): Promise<Head | null> {
  return MetadataLog.latest(MetadataLog.headRecord(store, keys))
}
