// The directory tree and every inode, in memory. Every change is expressed as journal entries and
// applied through `apply`, the same function that replays the journal at load: what a mount sees
// and what a later load rebuilds cannot drift apart.
import { randomBuffer } from '../crypto'
import { FsError, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, isSpecialType } from './fs-types'
import { BlobRef, ChunkRef, StoredRef, loadRef, refBlobs, storeRef, storeRefAfter } from './chunk-refs'
import { splitParent, splitPath } from './paths'

export * from './chunk-refs'

/** The blobs a file's chunks are stored in (inline chunks have none), each with its chunk's index. */
export function chunkBlobs(node: { chunks?: ChunkMap }): { ref: BlobRef; index: number }[] {
  const out: { ref: BlobRef; index: number }[] = []
  node.chunks?.forEach((ref, index) => {
    for (const blob of refBlobs(ref)) out.push({ ref: blob, index })
  })
  return out
}

/**
 * A file's chunks that hold data, by index: a hole has no entry, so a sparse file costs memory and
 * metadata in proportion to its data, not its length.
 */
export type ChunkMap = Map<number, ChunkRef>

/** 'special': a FIFO, socket or device node (the type is in `mode`, a device's number in `rdev`). */
export type Kind = 'dir' | 'file' | 'symlink' | 'special'

/** An inode's attributes: what an 'ino' journal entry carries. */
export interface InodeAttrs {
  id: string
  kind: Kind
  mode: number
  uid: number
  gid: number
  nlink: number
  size: number
  atimeMs: number
  mtimeMs: number
  ctimeMs: number
  target?: string
  /** The inode number (st_ino): unique in the volume, never reused. Format 1 had none (see numberInodes). */
  inum?: number
  /** Device number of a character or block device. */
  rdev?: number
}

export interface Inode extends InodeAttrs {
  entries?: Map<string, string>
  chunks?: ChunkMap
  /** Extended attributes (user.* names) -> value. */
  xattrs?: Map<string, Buffer>
}

export type Entry =
  | { t: 'ino'; ino: InodeAttrs }
  | { t: 'link'; dir: string; name: string; ino: string }
  | { t: 'unlink'; dir: string; name: string }
  | { t: 'drop'; ino: string }
  | { t: 'chunks'; ino: string; size: number; set: [number, StoredRef | null][] }
  /** Sets (value in base64) or removes (null) one extended attribute. Since format 2. */
  | { t: 'xattr'; ino: string; name: string; value: string | null }

/** An inode as stored in a checkpoint. */
export interface SerializedInode extends InodeAttrs {
  entries?: [string, string][]
  /** Format 1: every chunk index up to the size, null for a hole. */
  chunks?: (StoredRef | null)[]
  /** Format 2: only the chunks that hold data, as [index, ref]. */
  parts?: [number, StoredRef][]
  /** Format 2: extended attributes as [name, base64 value]. */
  xattrs?: [string, string][]
}

/** A 'chunks' entry: the file's size and some chunk refs (null: a hole); the list is cut to the size. */
export function chunksEntry(node: Inode, size: number, set: [number, ChunkRef | null][]): Entry {
  return { t: 'chunks', ino: node.id, size, set: set.map(([i, ref]) => [i, ref ? storeRefAfter(node.chunks?.get(i), ref) : null]) }
}

/** The attributes of an inode without its contents (what an 'ino' entry records). */
function attrsOf(node: Inode): InodeAttrs {
  const { entries: _e, chunks: _c, xattrs: _x, ...attrs } = node
  return attrs
}

export const DIR_SIZE = 4096

export function newInodeId(): string {
  return randomBuffer(16).toString('hex')
}

const typeBits: Record<Exclude<Kind, 'special'>, number> = { dir: S_IFDIR, file: S_IFREG, symlink: S_IFLNK }

/** The file type bits of a new inode of `kind` (a special file's come with its mode). */
function typeOf(kind: Kind, mode: number): number {
  if (kind !== 'special') return typeBits[kind]
  if (!isSpecialType(mode)) throw new FsError('EINVAL', `not a FIFO, socket or device type: ${(mode & S_IFMT).toString(8)}`)
  return mode & S_IFMT
}

/** Inode numbers are kept exact in a JS number (and in the binding's two 32-bit words). */
const MAX_INUM = Number.MAX_SAFE_INTEGER

/**
 * Most names in one directory. readdir hands the kernel the whole listing at once (libfuse 2's
 * high-level API), so its cost on the event loop grows with the directory: this bounds it.
 */
export const MAX_DIR_ENTRIES = 1_000_000

/** Where a name is, or goes: its directory and the name in it (resolveParent). */
export interface EntryAt {
  dir: Inode
  name: string
}

/** What code outside the volume may do with its namespace: look (names, inodes, counts), never change it. */
export type NamespaceView = Pick<Namespace, 'rootId' | 'resolve' | 'lookup' | 'get' | 'all' | 'inodeCount'>

export class Namespace {
  private readonly inodes = new Map<string, Inode>()
  /** Directory id -> its parent's id (directories have exactly one name). */
  private readonly parents = new Map<string, string>()
  private pending: Entry[] = []
  /** The next inode number to give out (one past the highest ever seen). */
  private nextInum = 1
  /** MAX_DIR_ENTRIES; tests lower it. */
  maxDirEntries = MAX_DIR_ENTRIES

  constructor(readonly rootId: string, readonly chunkSize: number) {}

  /** A namespace holding only an empty root directory (owned by the creator). */
  static empty(rootId: string, chunkSize: number, uid: number, gid: number, now = Date.now()): Namespace {
    const ns = new Namespace(rootId, chunkSize)
    ns.record({ t: 'ino', ino: { id: rootId, kind: 'dir', mode: S_IFDIR | 0o755, uid, gid, nlink: 2, size: DIR_SIZE, atimeMs: now, mtimeMs: now, ctimeMs: now, inum: ns.nextInum } })
    return ns
  }

  get inodeCount(): number {
    return this.inodes.size
  }

  all(): IterableIterator<Inode> {
    return this.inodes.values()
  }

  get(id: string): Inode | undefined {
    return this.inodes.get(id)
  }

  /** Entries recorded since the last `takePending`. */
  hasPending(): boolean {
    return this.pending.length > 0
  }

  takePending(): Entry[] {
    const out = this.pending
    this.pending = []
    return out
  }

  /** Puts entries back at the front after a failed commit, so the next commit carries them. */
  restorePending(entries: Entry[]): void {
    this.pending = entries.concat(this.pending)
  }

  // ---- reading ----

  resolve(path: string): Inode {
    return this.walk(splitPath(path), path)
  }

  /** The parent directory of `path` and the last name (checked). */
  resolveParent(path: string): EntryAt {
    const { parent, name } = splitParent(path)
    const dir = this.walk(parent, path)
    if (dir.kind !== 'dir') throw new FsError('ENOTDIR', `not a directory: ${path}`)
    return { dir, name }
  }

  lookup(dir: Inode, name: string): Inode | undefined {
    const id = dir.entries!.get(name)
    return id === undefined ? undefined : this.inodes.get(id)
  }

  private walk(parts: string[], path: string): Inode {
    let node = this.inodes.get(this.rootId)!
    for (const part of parts) {
      if (node.kind !== 'dir') throw new FsError('ENOTDIR', `not a directory on the way to ${path}`)
      const next = this.lookup(node, part)
      if (!next) throw new FsError('ENOENT', `no such file or directory: ${path}`)
      node = next
    }
    return node
  }

  // ---- changing: each method records entries ----

  makeInode(kind: Kind, mode: number, uid: number, gid: number, extra: Partial<InodeAttrs> = {}): InodeAttrs {
    const now = Date.now()
    if (this.nextInum > MAX_INUM) throw new FsError('ENOSPC', 'the volume has used up its inode numbers')
    return {
      id: newInodeId(), kind, mode: (mode & ~S_IFMT) | typeOf(kind, mode), uid, gid,
      nlink: kind === 'dir' ? 2 : 1, size: kind === 'dir' ? DIR_SIZE : 0,
      atimeMs: now, mtimeMs: now, ctimeMs: now, inum: this.nextInum++, ...extra,
    }
  }

  /**
   * Gives every inode without a number one (volumes of format 1 had none), in a fixed order after
   * the highest number in use. Returns how many it numbered: a writer then checkpoints, so the
   * numbers stay the same on every later load.
   */
  numberInodes(): number {
    const missing = [...this.inodes.values()].filter((n) => n.inum === undefined)
    missing.sort((a, b) => (a.id === this.rootId ? -1 : b.id === this.rootId ? 1 : a.id < b.id ? -1 : 1))
    for (const node of missing) node.inum = this.nextInum++
    return missing.length
  }

  /** Adds a new inode under `path`; EEXIST when the name is taken. */
  add(path: string, attrs: InodeAttrs): Inode {
    return this.addTo(this.resolveParent(path), path, attrs)
  }

  /** A new inode as `name` in `dir` (`at` from resolveParent(path), for a caller that needed the parent first). */
  addTo(at: EntryAt, path: string, attrs: InodeAttrs): Inode {
    const { dir, name } = at
    if (dir.entries!.has(name)) throw new FsError('EEXIST', `already exists: ${path}`)
    this.checkRoom(dir, path)
    this.record({ t: 'ino', ino: attrs })
    this.record({ t: 'link', dir: dir.id, name, ino: attrs.id })
    this.touchDir(dir, attrs.kind === 'dir' ? 1 : 0)
    return this.inodes.get(attrs.id)!
  }

  /** A new name for an existing non-directory inode. */
  link(existing: string, newPath: string): void {
    const node = this.resolve(existing)
    if (node.kind === 'dir') throw new FsError('EPERM', `cannot hard-link a directory: ${existing}`)
    const { dir, name } = this.resolveParent(newPath)
    if (dir.entries!.has(name)) throw new FsError('EEXIST', `already exists: ${newPath}`)
    this.checkRoom(dir, newPath)
    this.record({ t: 'link', dir: dir.id, name, ino: node.id })
    this.setAttrs(node, { nlink: node.nlink + 1, ctimeMs: Date.now() })
    this.touchDir(dir, 0)
  }

  /** Removes a non-directory name; returns the inode (nlink already decremented). */
  unlink(path: string): Inode {
    const { dir, name } = this.resolveParent(path)
    const node = this.lookup(dir, name)
    if (!node) throw new FsError('ENOENT', `no such file: ${path}`)
    if (node.kind === 'dir') throw new FsError('EISDIR', `is a directory: ${path}`)
    this.record({ t: 'unlink', dir: dir.id, name })
    this.setAttrs(node, { nlink: node.nlink - 1, ctimeMs: Date.now() })
    this.touchDir(dir, 0)
    return node
  }

  rmdir(path: string): void {
    const { dir, name } = this.resolveParent(path)
    const node = this.lookup(dir, name)
    if (!node) throw new FsError('ENOENT', `no such directory: ${path}`)
    if (node.kind !== 'dir') throw new FsError('ENOTDIR', `not a directory: ${path}`)
    if (node.entries!.size > 0) throw new FsError('ENOTEMPTY', `directory not empty: ${path}`)
    this.record({ t: 'unlink', dir: dir.id, name })
    this.record({ t: 'drop', ino: node.id })
    this.touchDir(dir, -1)
  }

  /**
   * rename(2): replaces an existing target (a file by a non-directory, an empty directory by a
   * directory). Returns the replaced inode, if any, with its nlink already decremented.
   */
  rename(from: string, to: string): Inode | undefined {
    const src = this.resolveParent(from)
    const node = this.lookup(src.dir, src.name)
    if (!node) throw new FsError('ENOENT', `no such file or directory: ${from}`)
    const dst = this.resolveParent(to)
    if (node.kind === 'dir' && this.isAncestor(node.id, dst.dir.id)) {
      throw new FsError('EINVAL', `cannot move a directory into itself: ${from} -> ${to}`)
    }
    const existing = this.lookup(dst.dir, dst.name)
    if (existing === node) return undefined
    if (!existing && dst.dir !== src.dir) this.checkRoom(dst.dir, to)
    if (existing) {
      if (existing.kind === 'dir') {
        if (node.kind !== 'dir') throw new FsError('EISDIR', `is a directory: ${to}`)
        if (existing.entries!.size > 0) throw new FsError('ENOTEMPTY', `directory not empty: ${to}`)
      } else if (node.kind === 'dir') throw new FsError('ENOTDIR', `not a directory: ${to}`)
      this.record({ t: 'unlink', dir: dst.dir.id, name: dst.name })
      if (existing.kind === 'dir') {
        this.record({ t: 'drop', ino: existing.id })
        this.touchDir(dst.dir, -1)
      } else this.setAttrs(existing, { nlink: existing.nlink - 1, ctimeMs: Date.now() })
    }
    this.record({ t: 'unlink', dir: src.dir.id, name: src.name })
    this.record({ t: 'link', dir: dst.dir.id, name: dst.name, ino: node.id })
    const moved = node.kind === 'dir' ? 1 : 0
    this.touchDir(src.dir, -moved)
    this.touchDir(dst.dir, moved)
    this.setAttrs(node, { ctimeMs: Date.now() })
    return existing && existing.kind !== 'dir' ? existing : undefined
  }

  /** Changes attributes of an inode and records the new state. */
  setAttrs(node: Inode, changes: Partial<Omit<InodeAttrs, 'id' | 'kind' | 'inum'>>): void {
    this.record({ t: 'ino', ino: { ...attrsOf(node), ...changes } })
  }

  /** Sets (or with null removes) one extended attribute and records it, with the new ctime. */
  setXattr(node: Inode, name: string, value: Buffer | null): void {
    this.record({ t: 'xattr', ino: node.id, name, value: value ? value.toString('base64') : null })
    this.setAttrs(node, { ctimeMs: Date.now() })
  }

  /** The entry that setAttrs would record, made now and recorded later by applyCommitted. */
  attrsEntry(node: Inode, changes: Partial<Omit<InodeAttrs, 'id' | 'kind' | 'inum'>>): Entry {
    return { t: 'ino', ino: { ...attrsOf(node), ...changes } }
  }

  /**
   * Entries of a commit that were made from state frozen when the commit began, and are committed
   * in the journal *before* the changes recorded since (the pending ones): applied now, and then
   * the pending attribute entries of the same inodes again, so that memory ends up as a replay of
   * the journal would.
   */
  applyCommitted(entries: Entry[]): void {
    const touched = new Set<string>()
    for (const e of entries) {
      const id = e.t === 'ino' ? e.ino.id : e.t === 'chunks' ? e.ino : undefined
      if (id !== undefined && !this.inodes.has(id)) continue // dropped meanwhile: a later entry drops it on replay too
      this.apply(e)
      if (e.t === 'ino') touched.add(e.ino.id)
    }
    for (const e of this.pending) if (e.t === 'ino' && touched.has(e.ino.id)) this.apply(e)
  }

  /** Removes an inode that no name and no open file refers to any more. */
  drop(node: Inode): void {
    this.record({ t: 'drop', ino: node.id })
  }

  private checkRoom(dir: Inode, path: string): void {
    if (dir.entries!.size >= this.maxDirEntries) throw new FsError('ENOSPC', `directory full (${this.maxDirEntries} entries): ${path}`)
  }

  private touchDir(dir: Inode, subdirDelta: number): void {
    const now = Date.now()
    this.setAttrs(dir, { nlink: dir.nlink + subdirDelta, mtimeMs: now, ctimeMs: now })
  }

  private isAncestor(ancestorId: string, id: string): boolean {
    for (let cur: string | undefined = id; cur !== undefined; cur = this.parents.get(cur)) if (cur === ancestorId) return true
    return false
  }

  private record(entry: Entry): void {
    this.apply(entry)
    this.pending.push(entry)
  }

  // ---- applying entries (live changes and replay) ----

  apply(entry: Entry): void {
    switch (entry.t) {
      case 'ino': {
        const existing = this.inodes.get(entry.ino.id)
        // An existing inode's size is set by 'chunks' entries alone (an 'ino' entry carries the size
        // it saw, which a commit of data frozen earlier may have moved past).
        if (existing) Object.assign(existing, entry.ino, { size: existing.size })
        else {
          const node: Inode = { ...entry.ino }
          if (node.kind === 'dir') node.entries = new Map()
          if (node.kind === 'file') node.chunks = new Map()
          this.inodes.set(node.id, node)
        }
        this.sawInum(entry.ino.inum)
        return
      }
      case 'link':
        this.dirOf(entry.dir).entries!.set(entry.name, entry.ino)
        if (this.inodes.get(entry.ino)?.kind === 'dir') this.parents.set(entry.ino, entry.dir)
        return
      case 'unlink': {
        const entries = this.dirOf(entry.dir).entries!
        const child = entries.get(entry.name)
        entries.delete(entry.name)
        if (child !== undefined && this.parents.get(child) === entry.dir) this.parents.delete(child)
        return
      }
      case 'drop':
        this.inodes.delete(entry.ino)
        return
      case 'chunks': {
        const node = this.inodes.get(entry.ino)
        if (!node || node.kind !== 'file') throw new Error(`journal: chunks for unknown file ${entry.ino}`)
        const chunks = node.chunks!
        for (const [i, ref] of entry.set) {
          if (ref) chunks.set(i, loadRef(ref, chunks.get(i)))
          else chunks.delete(i)
        }
        const count = Math.ceil(entry.size / this.chunkSize)
        for (const i of chunks.keys()) if (i >= count) chunks.delete(i)
        node.size = entry.size
        return
      }
      case 'xattr': {
        const node = this.inodes.get(entry.ino)
        if (!node) throw new Error(`journal: xattr for unknown inode ${entry.ino}`)
        if (entry.value === null) node.xattrs?.delete(entry.name)
        else (node.xattrs ??= new Map()).set(entry.name, Buffer.from(entry.value, 'base64'))
        if (node.xattrs?.size === 0) delete node.xattrs
        return
      }
      default:
        // Heads are version-gated, so this is a damaged entry, never a newer one: refuse, don't skip.
        throw new Error(`journal: unknown entry type ${JSON.stringify((entry as { t?: unknown }).t)}`)
    }
  }

  private sawInum(inum: number | undefined): void {
    if (inum !== undefined && inum >= this.nextInum) this.nextInum = inum + 1
  }

  private dirOf(id: string): Inode {
    const dir = this.inodes.get(id)
    if (!dir || dir.kind !== 'dir') throw new Error(`journal: unknown directory ${id}`)
    return dir
  }

  // ---- checkpoints ----

  /** The checkpoint form (format 2): sparse chunk lists, extended attributes. */
  serialize(): SerializedInode[] {
    const out: SerializedInode[] = []
    for (const node of this.inodes.values()) {
      const s: SerializedInode = attrsOf(node)
      if (node.entries) s.entries = [...node.entries]
      if (node.chunks) s.parts = [...node.chunks].map(([i, ref]) => [i, storeRef(ref)])
      if (node.xattrs) s.xattrs = [...node.xattrs].map(([name, value]) => [name, value.toString('base64')])
      out.push(s)
    }
    return out
  }

  /** Reads a checkpoint of format 1 or 2. */
  static deserialize(rootId: string, chunkSize: number, inodes: SerializedInode[]): Namespace {
    const ns = new Namespace(rootId, chunkSize)
    for (const s of inodes) {
      const { entries, chunks, parts, xattrs, ...attrs } = s
      const node: Inode = { ...attrs }
      if (attrs.kind === 'dir') node.entries = new Map(entries ?? [])
      if (attrs.kind === 'file') {
        node.chunks = new Map()
        for (const [i, ref] of parts ?? []) node.chunks.set(i, loadRef(ref))
        chunks?.forEach((ref, i) => ref && node.chunks!.set(i, loadRef(ref)))
      }
      if (xattrs?.length) node.xattrs = new Map(xattrs.map(([name, value]) => [name, Buffer.from(value, 'base64')]))
      ns.inodes.set(node.id, node)
      ns.sawInum(node.inum)
    }
    for (const node of ns.inodes.values()) {
      if (node.kind !== 'dir') continue
      for (const child of node.entries!.values()) if (ns.inodes.get(child)?.kind === 'dir') ns.parents.set(child, node.id)
    }
    if (!ns.inodes.has(rootId)) throw new Error('checkpoint has no root directory')
    return ns
  }
}

