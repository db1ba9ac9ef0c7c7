// The FUSE adapter: each fuse-native operation becomes one FileSystem call (src/volume/fs-types.ts).
// Thin on purpose: no state beyond what FUSE needs, nothing that blocks the event loop. Errors map
// to errno (errno.ts); anything that is not an FsError is logged and answered with EIO.
//
// The POSIX rules (read-only, setgid directories, chown -1, utimens null) are the file system's
// (the FileSystem contract in src/volume/fs-types.ts). What the adapter adds:
// - uid/gid of new entries: those of the process that creates them (the patched binding passes the
//   caller's context); `owner` (default: the daemon's uid/gid) only when no caller is given.
// - handles: a file system's handle outside 1..2^31-1 is released and answered with EIO.
// - readdir pages and bounds on open directory streams.
// - write: the file system must copy the bytes before its promise resolves (the buffer is libfuse's
//   memory and is detached afterwards); read fills `buffer` before resolving and never later.
import { FsError, O_RDWR, type Attr, type DirListing, type FileSystem } from '../volume/fs-types'
import { HandleTable, MAX_HANDLE } from '../volume/handles'
import type { CountCb, ErrCb, FuseDirStat, FuseOps, FuseStat, FuseStatfs, ValueCb } from './binding'
import { ERRNO, toErrno } from './errno'

export interface AdapterOptions {
  /** Where unexpected failures are reported (default: stderr). */
  log?: (line: string) => void
  /** Owner of new files, directories and symlinks when the binding names no caller (default: this process's uid/gid). */
  owner?: { uid: number; gid: number }
}

export function toFuseStat(a: Attr): FuseStat {
  return {
    ino: a.ino,
    rdev: a.rdev,
    mode: a.mode,
    uid: a.uid,
    gid: a.gid,
    size: a.size,
    nlink: a.nlink,
    // fuse-native accepts Date objects or ms numbers; numbers spare three allocations per getattr.
    atime: Math.floor(a.atimeMs),
    mtime: Math.floor(a.mtimeMs),
    ctime: Math.floor(a.ctimeMs),
    blksize: 4096,
    blocks: Math.ceil(a.size / 512),
  }
}

const U32 = 0xffffffff

/** statvfs for fuse-native, whose fields are uint32: the fragment size grows until the counts fit. */
export function toFuseStatfs(s: { blockSize: number; totalBytes: number; freeBytes: number; files: number; maxNameLength: number }): FuseStatfs {
  let frsize = Math.max(512, s.blockSize | 0)
  while (s.totalBytes / frsize > U32 && frsize < 2 ** 30) frsize *= 2
  const blocks = Math.min(U32, Math.floor(s.totalBytes / frsize))
  const free = Math.min(blocks, Math.floor(s.freeBytes / frsize))
  const files = Math.min(U32, s.files)
  const ffree = Math.max(0, U32 - files)
  return {
    bsize: frsize,
    frsize,
    blocks,
    bfree: free,
    bavail: free,
    files: U32,
    ffree,
    favail: ffree,
    fsid: 0,
    flag: 0,
    namemax: s.maxNameLength,
  }
}

function parentOf(path: string): string {
  return path.slice(0, path.lastIndexOf('/')) || '/'
}

/** Entries answered per readdir call (the kernel's buffer takes ~100 names; the rest are asked for again). */
const DIR_PAGE = 256
/** Open directory streams, and names held by their listings, at most: a caller cannot grow memory without bound. */
const MAX_DIR_STREAMS = 4096
const MAX_LISTED_ENTRIES = 4_000_000

interface DirStream {
  listing: { self: FuseDirStat; parent: FuseDirStat; entries: DirListing } | null
}

/**
 * One page of a listing from `offset` (positions: 0 '.', 1 '..', 2 + i the listing's entry i):
 * a run of entries that still exist, starting at the first one at or after `offset`; its base is
 * that position, so each entry's offset (base + index + 1) is its position + 1. Empty at the end.
 */
function dirPage(l: NonNullable<DirStream['listing']>, offset: number): { names: string[]; stats: FuseDirStat[]; base: number } {
  const end = l.entries.size + 2
  const at = (p: number): { name: string; stat: FuseDirStat } | null => {
    if (p === 0) return { name: '.', stat: l.self }
    if (p === 1) return { name: '..', stat: l.parent }
    const e = l.entries.entry(p - 2)
    return e && { name: e.name, stat: e }
  }
  let p = Math.max(0, offset)
  while (p < end && !at(p)) p++
  const names: string[] = []
  const stats: FuseDirStat[] = []
  for (let q = p; q < end && names.length < DIR_PAGE; q++) {
    const e = at(q)
    if (!e) break // the page stops before a name gone since the listing: offsets stay positions
    names.push(e.name)
    stats.push(e.stat)
  }
  return { names, stats, base: p }
}

export function createFuseOps(fs: FileSystem, opts: AdapterOptions = {}): FuseOps {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`))
  const dirStreams = new HandleTable<DirStream>()
  let listedEntries = 0
  const owner = opts.owner ?? { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 }

  /** Runs `fn`, and hands its result or its errno to the callbacks (even if `fn` throws synchronously). */
  function call<T>(op: string, what: string, fn: () => Promise<T>, ok: (v: T) => void, fail: (errno: number) => void): void {
    let p: Promise<T>
    try {
      p = fn()
    } catch (err) {
      p = Promise.reject(err)
    }
    p.then(ok, (err: unknown) =>
      fail(
        toErrno(err, (e) =>
          log(`edfs fuse: ${op} ${what}: unexpected error (EIO): ${(e as Error)?.stack ?? String(e)}`),
        ),
      ),
    )
  }
  const errCb = (cb: ErrCb) => ({ ok: () => cb(0), fail: (n: number) => cb(n) })
  const countCb = (cb: CountCb) => ({ ok: (n: number) => cb(n), fail: (n: number) => cb(n) })

  function voidOp(op: string, what: string, cb: ErrCb, fn: () => Promise<void>): void {
    const { ok, fail } = errCb(cb)
    call(op, what, fn, ok, fail)
  }

  function handleOp(op: string, path: string, cb: ValueCb<number>, fn: () => Promise<number>): void {
    call(
      op,
      path,
      fn,
      (fh) => {
        if (Number.isInteger(fh) && fh >= 1 && fh <= MAX_HANDLE) return cb(0, fh)
        log(`edfs fuse: ${op} ${path}: the file system returned handle ${fh}, outside 1..2^31-1 (EIO)`)
        fs.release(fh).catch(() => {})
        cb(ERRNO.EIO)
      },
      (n) => cb(n),
    )
  }

  const ops: FuseOps = {
    getattr(path, cb) {
      call('getattr', path, () => fs.getattr(path), (a) => cb(0, toFuseStat(a)), (n) => cb(n))
    },
    fgetattr(path, _fd, cb) {
      call('fgetattr', path, () => fs.getattr(path), (a) => cb(0, toFuseStat(a)), (n) => cb(n))
    },
    access(path, mode, cb) {
      voidOp('access', path, cb, () => fs.access(path, mode))
    },
    statfs(_path, cb) {
      call('statfs', '/', () => fs.statfs(), (s) => cb(0, toFuseStatfs(s)), (n) => cb(n))
    },
    // A directory stream: opendir takes nothing yet; the first readdir takes the listing (a copy of
    // the directory's pairs), and each readdir answers one page of it from the offset the kernel
    // asks for, so a huge directory never holds the event loop for long. With a stat per name (ino
    // and type), libfuse fills in d_ino and d_type: `ls -i` and `find` need no getattr per entry.
    opendir(_path, _flags, cb) {
      if (dirStreams.size >= MAX_DIR_STREAMS) return cb(ERRNO.EMFILE)
      cb(0, dirStreams.add({ listing: null }))
    },
    releasedir(_path, fd, cb) {
      const stream = dirStreams.get(fd)
      if (stream?.listing) listedEntries -= stream.listing.entries.size
      dirStreams.delete(fd)
      cb(0)
    },
    readdir(path, cb, offset = 0, fd = 0) {
      const page = async () => {
        const stream = dirStreams.get(fd)
        if (!stream) throw new FsError('EBADF', `no directory stream ${fd}`)
        if (!stream.listing || offset === 0) {
          const [entries, self, parent] = await Promise.all([fs.readdir(path), fs.getattr(path), fs.getattr(parentOf(path))])
          if (stream.listing) listedEntries -= stream.listing.entries.size
          if (listedEntries + entries.size > MAX_LISTED_ENTRIES) throw new FsError('ENOMEM', `more than ${MAX_LISTED_ENTRIES} names in open directory listings`)
          listedEntries += entries.size
          stream.listing = { self, parent, entries }
        }
        const p = dirPage(stream.listing, offset)
        // A directory that fits in one page is answered whole and without offsets: libfuse keeps
        // it and answers the kernel's next READDIRs (up to the empty one at the end) itself, with
        // no round trip into JS (ls -lR asked JS ~4 times per directory).
        const whole = offset === 0 && p.names.length === stream.listing.entries.size + 2
        return { ...p, base: whole ? undefined : p.base }
      }
      call('readdir', path, page, (p) => cb(0, p.names, p.stats, p.base), (n) => cb(n))
    },
    open(path, flags, cb) {
      handleOp('open', path, cb, () => fs.open(path, flags))
    },
    create(path, mode, cb, caller = owner) {
      // fuse-native does not pass create's open flags; the kernel positions O_APPEND writes itself.
      handleOp('create', path, cb, () => fs.create(path, mode, caller.uid, caller.gid, O_RDWR))
    },
    release(path, fd, cb) {
      voidOp('release', path, cb, () => fs.release(fd))
    },
    read(path, fd, buf, len, pos, cb) {
      const { ok, fail } = countCb(cb)
      call('read', path, () => fs.read(fd, buf, len, pos), ok, fail)
    },
    write(path, fd, buf, len, pos, cb) {
      const { ok, fail } = countCb(cb)
      call('write', path, () => fs.write(fd, buf, len, pos), ok, fail)
    },
    flush(path, fd, cb) {
      voidOp('flush', path, cb, () => fs.flush(fd))
    },
    // fuse-native's real argument order: (path, datasync, fd).
    fsync(path, _datasync, fd, cb) {
      voidOp('fsync', path, cb, () => fs.fsync(fd))
    },
    // fsync of a directory on the mount: everything written so far is committed (`edfs sync`).
    fsyncdir(path, _datasync, _fd, cb) {
      voidOp('fsyncdir', path, cb, () => fs.sync())
    },
    truncate(path, size, cb) {
      voidOp('truncate', path, cb, () => fs.truncate(path, size))
    },
    ftruncate(path, fd, size, cb) {
      voidOp('ftruncate', path, cb, () => (fd ? fs.ftruncate(fd, size) : fs.truncate(path, size)))
    },
    unlink(path, cb) {
      voidOp('unlink', path, cb, () => fs.unlink(path))
    },
    mkdir(path, mode, cb, caller = owner) {
      voidOp('mkdir', path, cb, () => fs.mkdir(path, mode, caller.uid, caller.gid))
    },
    mknod(path, mode, dev, cb, caller = owner) {
      voidOp('mknod', path, cb, () => fs.mknod(path, mode, dev, caller.uid, caller.gid))
    },
    rmdir(path, cb) {
      voidOp('rmdir', path, cb, () => fs.rmdir(path))
    },
    rename(src, dest, cb) {
      voidOp('rename', `${src} -> ${dest}`, cb, () => fs.rename(src, dest))
    },
    link(src, dest, cb) {
      voidOp('link', `${src} -> ${dest}`, cb, () => fs.link(src, dest))
    },
    symlink(target, path, cb, caller = owner) {
      voidOp('symlink', path, cb, () => fs.symlink(target, path, caller.uid, caller.gid))
    },
    readlink(path, cb) {
      call('readlink', path, () => fs.readlink(path), (t) => cb(0, t), (n) => cb(n))
    },
    chmod(path, mode, cb) {
      voidOp('chmod', path, cb, () => fs.chmod(path, mode))
    },
    chown(path, uid, gid, cb) {
      voidOp('chown', path, cb, () => fs.chown(path, uid, gid))
    },
    setxattr(path, name, value, _position, flags, cb) {
      voidOp('setxattr', `${path} ${name}`, cb, () => fs.setxattr(path, name, value, flags))
    },
    getxattr(path, name, _position, cb) {
      call('getxattr', `${path} ${name}`, () => fs.getxattr(path, name), (v) => cb(0, v), (n) => cb(n))
    },
    listxattr(path, cb) {
      call('listxattr', path, () => fs.listxattr(path), (names) => cb(0, names), (n) => cb(n))
    },
    removexattr(path, name, cb) {
      voidOp('removexattr', `${path} ${name}`, cb, () => fs.removexattr(path, name))
    },
    fallocate(path, fd, mode, offset, length, cb) {
      voidOp('fallocate', path, cb, () => fs.fallocate(fd, mode, offset, length))
    },
    utimens(path, atime, mtime, cb) {
      voidOp('utimens', path, cb, () => fs.utimens(path, atime, mtime))
    },
  }
  return ops
}
