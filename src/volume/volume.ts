// The file system: namespace in memory, metadata journal on the servers, file contents through
// write-back buffers and the chunk cache. Implements FileSystem for the FUSE adapter and the CLI.
import { VolumeKeys, rootInodeId } from '../crypto'
import { ChunkCache } from './chunk-cache'
import { type DiskCache, MAX_PENDING_BYTES } from './disk-cache'
import { FileData, FileSnapshot, FileState } from './file-data'
import {
  Attr, DirEntry, DirListing, FALLOC_FL_KEEP_SIZE, FileSystem, FsError, MAX_FILE_SIZE, MAX_SYMLINK_BYTES, O_ACCMODE, O_RDONLY, O_TRUNC,
  S_IFBLK, S_IFCHR, S_IFMT, S_IFREG, StatFs, W_OK, isSpecialType,
} from './fs-types'
import { chownIds, newEntryAttrs, utimensTimes } from './posix-attrs'
import { BackgroundGc, BackgroundGcOptions } from './background-gc'
import { BackgroundRepair, BackgroundRepairOptions } from './background-repair'
import { referencedBlobs } from './gc'
import { GroupCommit } from './group-commit'
import { HandleTable } from './handles'
import { Lease } from './lease'
import { HeadMovedError, MetadataError, MetadataLog } from './metadata'
import { ChunkRef, Entry, EntryAt, Inode, InodeAttrs, Kind, Namespace, NamespaceView, chunksEntry, refBlobs } from './namespace'
import { MAX_NAME_BYTES } from './paths'
import { getXattr, listXattrs, removeXattr, setXattr } from './xattrs'
import { VolumeStore, isStoreFull } from './store'

export interface VolumeOptions {
  readOnly: boolean
  /** Memory for decrypted chunks and write buffers together (the write buffers' share comes off the cache). */
  cacheBytes?: number
  /** Bytes of write buffers before writers wait (default: an eighth of cacheBytes, at most 128 MiB). */
  maxDirtyBytes?: number
  maxUploads?: number
  readAheadChunks?: number
  /** Sealed chunks kept on the local disk below the memory cache (closed with the volume). */
  diskCache?: DiskCache
  /** Lease holder description (host, process). */
  holder?: string
  /** Read-only volumes look for new commits this often. */
  followIntervalMs?: number
  /**
   * Changes are committed at most this long after they happen (default 1 s): closes return at
   * memory speed and their files are committed in batches. fsync, sync and close of the volume
   * commit at once.
   */
  commitDelayMs?: number
  /** close(2) returns only once the file is committed (close-to-open durability; default false). */
  syncClose?: boolean
  /** A writer collects garbage in the background (the mount daemon does); off by default. */
  backgroundGc?: BackgroundGcOptions
  /** A writer repairs copies in the background (the mount daemon does); off by default. */
  backgroundRepair?: BackgroundRepairOptions
  /**
   * A read, flush or fsync that the servers have not completed after this long fails with EIO (the
   * work goes on in the background): with every server down, calls fail instead of hanging.
   */
  opTimeoutMs?: number
  log?: (line: string) => void
}

interface Handle {
  state: FileState
  writable: boolean
  /** End of the last read: a read starting near it continues a stream. */
  lastEnd: number
  /** Reads in a row that started near the end of the one before. */
  nearReads: number
}

/** Memory for data (decrypted chunks and write buffers) unless configured. */
export const DEFAULT_CACHE_BYTES = 512 * 1024 * 1024

/** How long a change may wait for its commit (the bound on what a crash loses without fsync). */
export const DEFAULT_COMMIT_DELAY_MS = 1000
/** A read this close to the previous end may be part of a sequential stream. */
const SEQUENTIAL_WINDOW = 2 * 1024 * 1024
/**
 * Near reads in a row that make a stream (whole chunks and read-ahead). One is not enough: a random
 * reader lands near its last read by chance (0.4 % of 4 KiB reads over 1 GiB), and taking that for
 * a stream decrypted a whole chunk and read four more ahead (profiled: most of fio's AES time).
 */
const STREAM_AFTER = 2
/** The file system counts as busy (background work waits) this long after a read or write. */
const BUSY_MS = 1000

export class Volume implements FileSystem {
  private readonly states = new Map<string, FileState>()
  private readonly handles = new HandleTable<Handle>()
  private readonly committer: GroupCommit
  private commitTimer: NodeJS.Timeout | null = null
  private followTimer: NodeJS.Timeout | null = null
  private readonly data: FileData
  readonly cache: ChunkCache
  private closed = false
  /** The background collector, when this writer runs one. */
  readonly gc: BackgroundGc | null
  /** The background repair, when this writer runs one. */
  readonly repair: BackgroundRepair | null
  private lastIoMs = -Infinity
  /** Commits done, and the time they took (metrics). */
  readonly commits = { count: 0, seconds: 0, failed: 0 }

  private constructor(
    private readonly store: VolumeStore,
    keys: VolumeKeys,
    private readonly log: MetadataLog,
    private ns: Namespace,
    private readonly lease: Lease | null,
    private readonly opts: VolumeOptions,
  ) {
    // One memory budget: write buffers take an eighth of it (at most 128 MiB), their sealed copies on
    // the way to the servers as much again at most (a buffer is held until its upload is done),
    // sealed chunks on their way to the disk cache 32 MiB at most, the cache the rest. Many uploads
    // in flight hide the servers' per-blob fsync latency.
    const budget = opts.cacheBytes ?? DEFAULT_CACHE_BYTES
    const maxDirtyBytes = opts.maxDirtyBytes ?? Math.max(4 * ns.chunkSize, Math.min(128 * 1024 * 1024, Math.floor(budget / 8)))
    const maxUploads = opts.maxUploads ?? 32
    const diskPending = opts.diskCache ? MAX_PENDING_BYTES : 0 // sealed chunks on their way to the disk cache
    this.cache = new ChunkCache(store, keys.contents, Math.max(0, budget - 2 * maxDirtyBytes - diskPending), opts.diskCache ?? null)
    this.data = new FileData(store, keys.contents, this.cache, {
      chunkSize: ns.chunkSize,
      maxDirtyBytes,
      maxUploads,
      readAheadChunks: opts.readAheadChunks ?? 4,
    })
    this.committer = new GroupCommit(async () => {
      const t0 = performance.now()
      try {
        await this.commitPending()
        this.commits.count++
      } catch (err) {
        this.commits.failed++
        throw err
      } finally {
        this.commits.seconds += (performance.now() - t0) / 1000
      }
    })
    this.gc = opts.backgroundGc && !opts.readOnly ? new BackgroundGc(this, store, { log: opts.log, ...opts.backgroundGc }) : null
    this.gc?.start()
    this.repair = opts.backgroundRepair && !opts.readOnly ? new BackgroundRepair(this, { log: opts.log, ...opts.backgroundRepair }) : null
    this.repair?.start()
  }

  /** Writes a new, empty volume on the servers. */
  static async create(store: VolumeStore, keys: VolumeKeys, p: { volumeId: string; chunkSize: number; replicas: number; uid: number; gid: number }): Promise<void> {
    const ns = Namespace.empty(rootInodeId(keys.names), p.chunkSize, p.uid, p.gid)
    await MetadataLog.create(store, keys, ns, { volumeId: p.volumeId, replicas: p.replicas })
  }

  /** Loads the volume; a writer first takes the lease. */
  static async open(store: VolumeStore, keys: VolumeKeys, opts: VolumeOptions): Promise<Volume> {
    const lease = opts.readOnly ? null : await Lease.acquire(store, keys, opts.holder)
    try {
      const { log, ns, truncatedAt } = await MetadataLog.load(store, keys, { tolerateBrokenJournal: opts.readOnly })
      // The head decides how many copies the volume keeps: a store configured otherwise would write
      // chunks with too few copies (or misplace them for fsck), so it is refused, saying how to fix it.
      if (log.head.replicas !== store.replicas) {
        throw new MetadataError(`the volume keeps ${log.head.replicas} copies of each chunk, but this client is set to ${store.replicas}: set "replicas": ${log.head.replicas} in the config (edfs init writes it)`)
      }
      if (truncatedAt) opts.log?.(`warning: ${truncatedAt.message}; showing the volume as of the last readable commit`)
      // A volume of format 1 has no inode numbers: the writer numbers its inodes and checkpoints at
      // once, so that every later load (and every reader) sees the same numbers.
      if (log.upgradeNeeded && !opts.readOnly) {
        await log.checkpoint(ns)
        opts.log?.(`volume upgraded to metadata format ${log.head.version}`)
      }
      const volume = new Volume(store, keys, log, ns, lease, opts)
      if (opts.readOnly) volume.follow(opts.followIntervalMs ?? 2000)
      return volume
    } catch (err) {
      await lease?.release()
      throw err
    }
  }

  get readOnly(): boolean {
    return this.opts.readOnly
  }

  get chunkSize(): number {
    return this.ns.chunkSize
  }

  get head() {
    return this.log.head
  }

  /** The tree as of the latest change, to look at: changes go through the FileSystem calls. */
  get namespace(): NamespaceView {
    return this.ns
  }

  /** The metadata blobs (checkpoint pieces, journal) the current head refers to. */
  metadataBlobs(): string[] {
    return this.log.blobs()
  }

  /**
   * Every blob gc must keep: those the committed volume refers to (taken at a moment with nothing
   * pending, so an uncommitted change cannot have dropped a reference yet), and the stored chunks of
   * files not yet committed. Null when the volume never settled within a few commits.
   */
  async committedReferences(): Promise<Set<string> | null> {
    for (let attempt = 0; attempt < 5; attempt++) {
      await this.commit()
      if (this.ns.hasPending()) continue
      const refs = referencedBlobs(this.ns, this.metadataBlobs())
      for (const s of this.states.values()) for (const ref of s.uploaded.values()) for (const blob of refBlobs(ref)) refs.add(blob.id)
      return refs
    }
    return null
  }

  // ---- reading the tree ----

  async getattr(path: string): Promise<Attr> {
    return this.attrOf(this.ns.resolve(path))
  }

  async access(path: string, mode: number): Promise<void> {
    this.ns.resolve(path)
    if (mode & W_OK && this.opts.readOnly) throw new FsError('EROFS', 'the volume is mounted read-only')
  }

  attrOf(node: Inode): Attr {
    const state = this.states.get(node.id)
    return {
      ino: node.inum!, mode: node.mode, nlink: node.nlink, uid: node.uid, gid: node.gid,
      size: state ? state.size : node.size,
      atimeMs: node.atimeMs, mtimeMs: state ? state.mtimeMs : node.mtimeMs, ctimeMs: state ? ctimeOf(state) : node.ctimeMs,
      rdev: node.rdev ?? 0,
    }
  }

  async readdir(path: string): Promise<DirListing> {
    const node = this.ns.resolve(path)
    if (node.kind !== 'dir') throw new FsError('ENOTDIR', `not a directory: ${path}`)
    // Two flat arrays, not an array of pairs: a million names are copied in a fraction of the time.
    const names = [...node.entries!.keys()]
    const ids = [...node.entries!.values()]
    const entry = (i: number): DirEntry | null => {
      const child = this.ns.get(ids[i]!)
      return child ? { name: names[i]!, ino: child.inum!, mode: child.mode } : null
    }
    return {
      size: names.length,
      entry,
      *[Symbol.iterator]() {
        for (let i = 0; i < names.length; i++) {
          const e = entry(i)
          if (e) yield e
        }
      },
    }
  }

  async readlink(path: string): Promise<string> {
    const node = this.ns.resolve(path)
    if (node.kind !== 'symlink') throw new FsError('EINVAL', `not a symbolic link: ${path}`)
    return node.target!
  }

  async statfs(): Promise<StatFs> {
    const space = await this.store.capacity()
    const r = Math.max(1, this.store.replicas)
    return {
      blockSize: 4096,
      totalBytes: Math.floor(space.totalBytes / r),
      freeBytes: Math.floor(space.freeBytes / r),
      files: this.ns.inodeCount,
      maxNameLength: MAX_NAME_BYTES,
    }
  }

  // ---- changing the tree ----

  async mkdir(path: string, mode: number, uid: number, gid: number): Promise<void> {
    this.writable()
    this.addEntry(this.ns.resolveParent(path), path, 'dir', mode & 0o7777, uid, gid)
    this.scheduleCommit()
  }

  async rmdir(path: string): Promise<void> {
    this.writable()
    if (splitRoot(path)) throw new FsError('EBUSY', 'cannot remove the root directory')
    this.ns.rmdir(path)
    this.scheduleCommit()
  }

  async unlink(path: string): Promise<void> {
    this.writable()
    this.forget(this.ns.unlink(path))
    this.scheduleCommit()
  }

  async rename(from: string, to: string): Promise<void> {
    this.writable()
    const replaced = this.ns.rename(from, to)
    if (replaced) this.forget(replaced)
    this.scheduleCommit()
  }

  async link(existing: string, newPath: string): Promise<void> {
    this.writable()
    this.ns.link(existing, newPath)
    this.scheduleCommit()
  }

  async mknod(path: string, mode: number, rdev: number, uid: number, gid: number): Promise<void> {
    this.writable()
    const type = mode & S_IFMT
    const at = this.ns.resolveParent(path)
    if (type === 0 || type === S_IFREG) {
      this.addEntry(at, path, 'file', mode, uid, gid)
      this.scheduleCommit()
      return
    }
    if (!isSpecialType(mode)) throw new FsError('EINVAL', `mknod: not a FIFO, socket, device or regular file type: ${type.toString(8)}`)
    const isDevice = type === S_IFCHR || type === S_IFBLK
    this.addEntry(at, path, 'special', mode, uid, gid, isDevice ? { rdev: rdev >>> 0 } : {})
    this.scheduleCommit()
  }

  async symlink(target: string, path: string, uid: number, gid: number): Promise<void> {
    this.writable()
    const bytes = Buffer.byteLength(target)
    if (bytes === 0) throw new FsError('ENOENT', `symlink: empty target for ${path}`)
    if (bytes > MAX_SYMLINK_BYTES) throw new FsError('ENAMETOOLONG', `symlink target of ${bytes} bytes (at most ${MAX_SYMLINK_BYTES}): ${path}`)
    this.addEntry(this.ns.resolveParent(path), path, 'symlink', 0o777, uid, gid, { target, size: bytes })
    this.scheduleCommit()
  }

  async chmod(path: string, mode: number): Promise<void> {
    this.writable()
    const node = this.ns.resolve(path)
    this.ns.setAttrs(node, { mode: (node.mode & ~0o7777) | (mode & 0o7777), ctimeMs: Date.now() })
    this.scheduleCommit()
  }

  async chown(path: string, uid: number, gid: number): Promise<void> {
    this.writable()
    const node = this.ns.resolve(path)
    this.ns.setAttrs(node, { ...chownIds(node, uid, gid), ctimeMs: Date.now() })
    this.scheduleCommit()
  }

  async utimens(path: string, atime: number | null, mtime: number | null): Promise<void> {
    this.writable()
    const node = this.ns.resolve(path)
    const times = utimensTimes(this.attrOf(node), atime, mtime)
    if (!times) return
    const { atimeMs, mtimeMs } = times
    const state = this.states.get(node.id)
    state?.setMtime(mtimeMs)
    this.ns.setAttrs(node, { atimeMs, mtimeMs, ctimeMs: Date.now() })
    this.scheduleCommit()
  }

  // ---- extended attributes (src/volume/xattrs.ts has the rules) ----

  async setxattr(path: string, name: string, value: Buffer, flags: number): Promise<void> {
    this.writable()
    setXattr(this.ns, this.ns.resolve(path), name, value, flags)
    this.scheduleCommit()
  }

  async getxattr(path: string, name: string): Promise<Buffer> {
    return getXattr(this.ns.resolve(path), name)
  }

  async listxattr(path: string): Promise<string[]> {
    return listXattrs(this.ns.resolve(path))
  }

  async removexattr(path: string, name: string): Promise<void> {
    this.writable()
    removeXattr(this.ns, this.ns.resolve(path), name)
    this.scheduleCommit()
  }

  async truncate(path: string, size: number): Promise<void> {
    this.writable()
    const node = this.fileAt(path)
    await this.withState(node, (state) => this.truncateState(state, size))
  }

  async ftruncate(fh: number, size: number): Promise<void> {
    await this.truncateState(this.writableHandle(fh).state, size)
  }

  async fallocate(fh: number, mode: number, offset: number, length: number): Promise<void> {
    const h = this.writableHandle(fh)
    if (mode & ~FALLOC_FL_KEEP_SIZE) throw new FsError('EOPNOTSUPP', `fallocate mode ${mode} is not supported (only 0 and FALLOC_FL_KEEP_SIZE)`)
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length <= 0) {
      throw new FsError('EINVAL', `fallocate: bad range ${offset}+${length}`)
    }
    const end = offset + length
    if (end > MAX_FILE_SIZE) throw new FsError('EFBIG', `fallocate past the largest file size (${MAX_FILE_SIZE} bytes)`)
    // Nothing to reserve: chunks take space when written. Mode 0 extends the size, as on ext4.
    if (!(mode & FALLOC_FL_KEEP_SIZE) && end > h.state.size) await this.truncateState(h.state, end)
  }

  // ---- files ----

  async create(path: string, mode: number, uid: number, gid: number, flags: number): Promise<number> {
    this.writable()
    const at = this.ns.resolveParent(path)
    if (this.ns.lookup(at.dir, at.name)) return this.open(path, flags)
    const node = this.addEntry(at, path, 'file', mode & 0o7777, uid, gid)
    this.scheduleCommit()
    return this.addHandle(node, flags)
  }

  async open(path: string, flags: number): Promise<number> {
    const node = this.ns.resolve(path)
    if (node.kind === 'dir') throw new FsError('EISDIR', `is a directory: ${path}`)
    if (node.kind !== 'file') throw new FsError('EINVAL', `not a regular file: ${path}`)
    const writable = (flags & O_ACCMODE) !== O_RDONLY
    if (writable) this.writable()
    const fh = this.addHandle(node, flags)
    if (writable && flags & O_TRUNC) await this.truncateState(this.handle(fh).state, 0)
    return fh
  }

  /** Bytes written but not yet stored on the servers. */
  get dirtyBytes(): number {
    return this.data.dirtyBytes
  }

  /** A read or write was served within the last second (background repair waits). */
  busy(): boolean {
    return performance.now() - this.lastIoMs < BUSY_MS
  }

  async read(fh: number, buffer: Buffer, length: number, position: number): Promise<number> {
    const h = this.handle(fh)
    this.lastIoMs = performance.now()
    // The kernel's read-ahead keeps several reads in flight, so a stream arrives slightly out of order.
    h.nearReads = Math.abs(position - h.lastEnd) <= SEQUENTIAL_WINDOW ? h.nearReads + 1 : 0
    const sequential = position === 0 || h.nearReads >= STREAM_AFTER
    try {
      // What is in memory is copied at once; only a read that waits for the servers gets a deadline.
      const n = this.data.readNow(h.state, buffer, length, position, sequential) ?? (await this.deadline(this.data.read(h.state, buffer, length, position, sequential), 'read'))
      h.lastEnd = sequential ? Math.max(h.lastEnd, position + n) : position + n
      return n
    } catch (err) {
      throw asIoError(err, 'read')
    }
  }

  async write(fh: number, buffer: Buffer, length: number, position: number): Promise<number> {
    const h = this.writableHandle(fh)
    if (!Number.isSafeInteger(position) || position < 0) throw new FsError('EINVAL', `bad write offset ${position}`)
    // As on ext4: at or past the largest size EFBIG, across it a short write.
    if (position >= MAX_FILE_SIZE && length > 0) throw new FsError('EFBIG', `write at ${position}, past the largest file size (${MAX_FILE_SIZE} bytes)`)
    const n = Math.min(length, buffer.length, MAX_FILE_SIZE - position)
    this.lastIoMs = performance.now()
    await this.data.write(h.state, n === buffer.length ? buffer : buffer.subarray(0, n), position)
    return n
  }

  /** close(2) of one descriptor: the file joins the write-back pipeline (or, with syncClose, is committed). */
  async flush(fh: number): Promise<void> {
    const h = this.handle(fh)
    if (h.writable) await this.closeWrites(h.state)
  }

  /** Data and metadata of everything written so far are on the servers when this returns. */
  async fsync(fh: number): Promise<void> {
    this.handle(fh)
    await this.sync()
  }

  async release(fh: number): Promise<void> {
    const h = this.handle(fh)
    this.handles.delete(fh)
    const state = h.state
    if (!state.closed()) return
    if (state.node.nlink <= 0) return this.forget(state.node) // the last handle of a deleted file: its data goes with it
    if (state.busy || state.changed) await this.closeWrites(state).catch((err) => this.opts.log?.(`release: ${(err as Error).message}`))
    this.dropIdle(state)
  }

  // ---- commits ----

  /**
   * Makes everything written so far durable: every file's buffered data is uploaded, recorded and
   * committed with all pending metadata changes (EIO after the deadline). The durability point of
   * fsync, `edfs sync` (fsync of a directory on the mount) and umount.
   */
  sync(): Promise<void> {
    return this.deadline(this.commit(), 'sync').catch((err: unknown) => {
      throw asIoError(err, 'commit')
    })
  }

  /** Commits everything written so far (group commit: concurrent callers share one). */
  async commit(): Promise<void> {
    if (this.lease) await this.lease.ensureValid()
    if (this.lease?.lost) throw new FsError('EIO', `lease lost: ${this.lease.lost.message}`)
    await this.committer.commit()
  }

  /** Flushes every file, commits, gives the lease back. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    if (this.followTimer) clearInterval(this.followTimer)
    if (this.commitTimer) clearTimeout(this.commitTimer)
    await this.gc?.stop()
    await this.repair?.stop()
    try {
      if (!this.readOnly) await this.commit()
    } finally {
      await this.lease?.release()
      await this.cache.disk?.close()
    }
  }

  /**
   * The end of a file's writes through one descriptor. Write-back: its buffered chunks start
   * uploading now and a commit follows within commitDelayMs. With syncClose: committed on return.
   */
  private async closeWrites(state: FileState): Promise<void> {
    if (this.opts.syncClose) return this.sync()
    this.data.startUploads(state)
    this.scheduleCommit()
  }

  /** A file state no handle uses and with nothing left to commit is dropped (and the inode, if unlinked). */
  private dropIdle(state: FileState): void {
    if (state.open || state.busy || state.changed || this.states.get(state.node.id) !== state) return
    this.states.delete(state.node.id)
    this.forget(state.node)
  }

  /**
   * One commit (run by the group committer). When it begins it freezes, synchronously, the pending
   * metadata entries and every changed file's data (FileData.snapshot); once that data is stored it
   * commits the entries and, after them, each file's size, chunks and mtime as of that moment.
   * Changes made meanwhile wait for the next commit. So the volume on the servers is always the
   * state at the start of some commit, whole: after a crash it shows a prefix of the changes,
   * never a later change without an earlier one, never a file with data missing that was written
   * before a later change that is there.
   */
  private async commitPending(): Promise<void> {
    if (this.commitTimer) clearTimeout(this.commitTimer)
    this.commitTimer = null
    const entries = this.ns.takePending()
    const frozen = [...this.states.values()]
      .filter((s) => s.pendingCommit)
      .map((s) => ({ snap: this.data.snapshot(s), attrs: this.ns.attrsEntry(s.node, { mtimeMs: s.mtimeMs, ctimeMs: ctimeOf(s) }) }))
    if (entries.length === 0 && frozen.length === 0) return
    let refs: Map<number, ChunkRef | null>[]
    let fileEntries: Entry[]
    try {
      refs = await Promise.all(frozen.map((f) => f.snap.refs))
      const failed = refs.findIndex((r) => [...r.values()].includes(null))
      if (failed >= 0) {
        const error = frozen[failed]!.snap.state.error
        throw new FsError(isStoreFull(error) ? 'ENOSPC' : 'EIO', `could not store the data of a file: ${error?.message ?? 'upload failed'}`)
      }
      fileEntries = frozen.flatMap((f, k) => [f.attrs, chunksEntry(f.snap.state.node, f.snap.size, this.chunkChanges(f.snap, refs[k]!))])
      await this.log.append([...entries, ...fileEntries])
    } catch (err) {
      for (const f of frozen) this.data.unfreeze(f.snap)
      if (err instanceof HeadMovedError) {
        this.opts.log?.(`error: ${err.message}`)
        throw err
      }
      this.ns.restorePending(entries)
      throw err
    }
    this.ns.applyCommitted(fileEntries)
    frozen.forEach((f, k) => this.data.committed(f.snap, refs[k]!))
    // A checkpoint must hold committed state only: not while changes made during this commit wait.
    // (File data not yet committed lives in the file states, not in the namespace.)
    if (this.log.needsCheckpoint() && !this.ns.hasPending()) {
      await this.log.checkpoint(this.ns).catch((err) => this.opts.log?.(`checkpoint postponed: ${(err as Error).message}`))
    }
    for (const f of frozen) this.dropIdle(f.snap.state)
  }

  /** The chunk refs a commit sets for a frozen file: its stored chunks, and holes where a truncate cut committed ones. */
  private chunkChanges(snap: FileSnapshot, refs: Map<number, ChunkRef | null>): [number, ChunkRef | null][] {
    const count = Math.ceil(snap.size / this.ns.chunkSize)
    const set: [number, ChunkRef | null][] = []
    for (const [i, ref] of refs) if (i < count) set.push([i, ref])
    const cut = Math.ceil(snap.minSize / this.ns.chunkSize)
    for (const i of snap.state.node.chunks?.keys() ?? []) if (i >= cut && i < count && !refs.has(i)) set.push([i, null])
    return set
  }

  private scheduleCommit(delayMs = this.opts.commitDelayMs ?? DEFAULT_COMMIT_DELAY_MS): void {
    if (this.commitTimer || this.closed) return
    this.commitTimer = setTimeout(() => {
      this.commitTimer = null
      this.commit().catch((err) => {
        this.opts.log?.(`background commit failed (will retry): ${(err as Error).message}`)
        if (!(err instanceof HeadMovedError) && !this.lease?.lost) this.scheduleCommit(1000)
      })
    }, delayMs)
    this.commitTimer.unref()
  }

  private follow(intervalMs: number): void {
    this.followTimer = setInterval(() => {
      this.log.refresh(this.ns).then(
        (next) => {
          if (next) this.adopt(next)
        },
        (err) => this.opts.log?.(`could not follow the volume head: ${(err as Error).message}`),
      )
    }, intervalMs)
    this.followTimer.unref()
  }

  /** A reader moves to the writer's newer namespace; its open files take their committed size and chunks. */
  private adopt(next: Namespace): void {
    this.ns = next
    for (const state of this.states.values()) {
      const node = next.get(state.node.id)
      if (node) state.rebase(node)
    }
  }

  // ---- helpers ----

  private deadline<T>(work: Promise<T>, what: string): Promise<T> {
    const ms = this.opts.opTimeoutMs
    if (!ms) return work
    let timer: NodeJS.Timeout | undefined
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new FsError('EIO', `${what}: the servers did not answer within ${ms} ms`)), ms)
    })
    work.catch(() => undefined) // may settle after the deadline: nobody waits for it then
    return Promise.race([work, expired]).finally(() => clearTimeout(timer))
  }

  private writable(): void {
    if (this.opts.readOnly) throw new FsError('EROFS', 'the volume is mounted read-only')
    if (this.lease?.lost) throw new FsError('EIO', `lease lost: ${this.lease.lost.message}`)
  }

  /** What a new entry at `path` gets, made by uid/gid (posix-attrs.ts: a setgid directory's group). */
  /** A new entry in a parent resolved once: its owner, group and mode by the POSIX rules (posix-attrs). */
  private addEntry(at: EntryAt, path: string, kind: Kind, mode: number, uid: number, gid: number, extra?: Partial<InodeAttrs>): Inode {
    const a = newEntryAttrs(at.dir, { uid, gid }, mode, kind === 'dir')
    return this.ns.addTo(at, path, this.ns.makeInode(kind, a.mode, a.uid, a.gid, extra))
  }

  private fileAt(path: string): Inode {
    const node = this.ns.resolve(path)
    if (node.kind === 'dir') throw new FsError('EISDIR', `is a directory: ${path}`)
    if (node.kind !== 'file') throw new FsError('EINVAL', `not a regular file: ${path}`)
    return node
  }

  private stateOf(node: Inode): FileState {
    let state = this.states.get(node.id)
    if (!state) {
      state = new FileState(node)
      this.states.set(node.id, state)
    }
    return state
  }

  /** Runs `fn` on the file's state, dropping a temporary state afterwards. */
  private async withState(node: Inode, fn: (s: FileState) => Promise<void>): Promise<void> {
    const state = this.stateOf(node)
    try {
      await fn(state)
    } finally {
      this.dropIdle(state)
    }
  }

  private async truncateState(state: FileState, size: number): Promise<void> {
    this.writable()
    if (!Number.isSafeInteger(size) || size < 0) throw new FsError('EINVAL', `bad size ${size}`)
    if (size > MAX_FILE_SIZE) throw new FsError('EFBIG', `size ${size} is past the largest file size (${MAX_FILE_SIZE} bytes)`)
    await this.data.truncate(state, size)
    this.scheduleCommit()
  }

  private addHandle(node: Inode, flags: number): number {
    const state = this.stateOf(node)
    state.opened()
    return this.handles.add({ state, writable: (flags & O_ACCMODE) !== O_RDONLY, lastEnd: 0, nearReads: 0 })
  }

  private handle(fh: number): Handle {
    const h = this.handles.get(fh)
    if (!h) throw new FsError('EBADF', `bad file handle ${fh}`)
    return h
  }

  private writableHandle(fh: number): Handle {
    const h = this.handle(fh)
    if (!h.writable) throw new FsError('EBADF', 'file not open for writing')
    this.writable()
    return h
  }

  /** Drops an inode that lost its last name, unless it is still open; with it, its unstored data. */
  private forget(node: Inode): void {
    if (node.nlink > 0 || this.ns.get(node.id) !== node) return
    const state = this.states.get(node.id)
    if (!state) return this.ns.drop(node)
    if (state.open || state.discarded) return
    this.data.discard(state)
    // Uploads under way finish first (a commit may be waiting for them); then the state goes.
    void state.uploadsSettled().then(() => this.dropIdle(state))
  }
}

/** A file's ctime: its last metadata change, or its last data change when that came later. */
function ctimeOf(state: FileState): number {
  return Math.max(state.node.ctimeMs, state.changedMs)
}

function splitRoot(path: string): boolean {
  return path.split('/').every((p) => p === '' || p === '.')
}

/** Anything that is not already an FsError becomes EIO: storage failures must never look like other errors. */
function asIoError(err: unknown, what: string): FsError {
  if (err instanceof FsError) return err
  return new FsError('EIO', `${what} failed: ${(err as Error).message}`)
}

