// A small typed wrapper around our patched fuse-native (patches/fuse-native+2.2.6.patch): the types
// of what edfs uses, the mount options, and mount/unmount (mount points: mount-points.ts).
//
// The binding's conventions (read in its source, v2.2.6, not its README):
// - Every callback takes a number first: 0 or a negative errno. read and write call back with one
//   number: the byte count, or a negative errno.
// - File handles are int32 and 0 means "no handle": a handle must be in 1..2^31-1.
// - fsync(path, datasync, fd, cb): datasync comes before fd (the README says otherwise).
// - The read/write buffers point into libfuse's memory and are detached once the callback has been
//   signalled: a file system must copy written bytes before it answers and must not keep `buf`.
// - getattr's times may be Date objects or numbers of milliseconds (we pass numbers).
// - utimens times are ms, or null for "leave unchanged" (UTIME_OMIT); UTIME_NOW arrives as the
//   current time (both thanks to the patch; the shipped addon passed atime twice).
// - create, mkdir, mknod and symlink get the requesting process's uid/gid after the callback (patch
//   level 2: the shipped binding does not expose fuse_get_context).
// - Patch level 3: `useIno` (st_ino is the file system's own, 64-bit: the high word rides in a
//   19th slot of the stat array), utimens also when only one time changes (flag_utime_omit_ok), a
//   fallocate operation, getxattr/listxattr answer ERANGE when the caller's buffer is too small, and
//   xattr names outside user.* are answered on the FUSE thread (EOPNOTSUPP since level 6) without
//   reaching JS: the kernel asks for security.capability on every write.
// - readdir may pass a stat per name (ino and mode), which libfuse turns into d_ino and d_type.
// - Patch level 4: an OPEN of a name of a hard-linked file drops the kernel's cached pages even
//   with kernel_cache (each name has pages of its own, which writes through another name leave stale).
// - Patch level 5: readdir gets the offset and the directory handle, and may answer one page.
// - Patch level 6: xattr names outside user.* are EOPNOTSUPP for reads and removals too (they were
//   ENODATA): ls -l then stops asking for security.selinux and ACLs after one file.
import * as path from 'node:path'
import { prepareMountPoint } from './mount-points'
import { withDeadlines } from './deadlines'

/** Who made a request (from fuse_get_context; patch level 2). */
export interface FuseCaller {
  uid: number
  gid: number
}

/** Patch level the code below relies on (Fuse.EDFS_PATCH and the addon's edfs_patch). */
export const REQUIRED_PATCH = 6

export interface FuseStat {
  mode: number
  uid: number
  gid: number
  size: number
  nlink: number
  atime: number | Date
  mtime: number | Date
  ctime: number | Date
  ino?: number
  rdev?: number
  blksize?: number
  blocks?: number
}

/** What readdir reports of a name: its inode number and type. */
export interface FuseDirStat {
  ino: number
  mode: number
}

export interface FuseStatfs {
  bsize: number
  frsize: number
  blocks: number
  bfree: number
  bavail: number
  files: number
  ffree: number
  favail: number
  fsid: number
  flag: number
  namemax: number
}

export type ErrCb = (err: number) => void
export type ValueCb<T> = (err: number, value?: T) => void
/** read/write: the byte count, or a negative errno. */
export type CountCb = (result: number) => void

export interface FuseOps {
  init?(cb: ErrCb): void
  getattr(path: string, cb: ValueCb<FuseStat>): void
  fgetattr?(path: string, fd: number, cb: ValueCb<FuseStat>): void
  access?(path: string, mode: number, cb: ErrCb): void
  statfs?(path: string, cb: ValueCb<FuseStatfs>): void
  /**
   * Patch level 5: `offset` is where to go on from and `fd` the opendir handle; answering with a
   * `base` (>= 0) gives one page, whose entry i has the offset base + i + 1 (without: the whole directory).
   */
  readdir?(path: string, cb: (err: number, names?: string[], stats?: FuseDirStat[], base?: number) => void, offset?: number, fd?: number): void
  opendir?(path: string, flags: number, cb: ValueCb<number>): void
  releasedir?(path: string, fd: number, cb: ErrCb): void
  open?(path: string, flags: number, cb: ValueCb<number>): void
  create?(path: string, mode: number, cb: ValueCb<number>, caller?: FuseCaller): void
  release?(path: string, fd: number, cb: ErrCb): void
  read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: CountCb): void
  write?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: CountCb): void
  flush?(path: string, fd: number, cb: ErrCb): void
  fsync?(path: string, datasync: number, fd: number, cb: ErrCb): void
  fsyncdir?(path: string, datasync: number, fd: number, cb: ErrCb): void
  truncate?(path: string, size: number, cb: ErrCb): void
  ftruncate?(path: string, fd: number, size: number, cb: ErrCb): void
  unlink?(path: string, cb: ErrCb): void
  mkdir?(path: string, mode: number, cb: ErrCb, caller?: FuseCaller): void
  mknod?(path: string, mode: number, dev: number, cb: ErrCb, caller?: FuseCaller): void
  rmdir?(path: string, cb: ErrCb): void
  rename?(src: string, dest: string, cb: ErrCb): void
  link?(src: string, dest: string, cb: ErrCb): void
  /** symlink(target, path): `target` is what the link points to, `path` the new name. */
  symlink?(target: string, path: string, cb: ErrCb, caller?: FuseCaller): void
  readlink?(path: string, cb: ValueCb<string>): void
  chmod?(path: string, mode: number, cb: ErrCb): void
  chown?(path: string, uid: number, gid: number, cb: ErrCb): void
  utimens?(path: string, atime: number | null, mtime: number | null, cb: ErrCb): void
  /** `value` is libfuse memory: copy it before answering. `position` is always 0 on Linux. */
  setxattr?(path: string, name: string, value: Buffer, position: number, flags: number, cb: ErrCb): void
  getxattr?(path: string, name: string, position: number, cb: ValueCb<Buffer>): void
  listxattr?(path: string, cb: ValueCb<string[]>): void
  removexattr?(path: string, name: string, cb: ErrCb): void
  fallocate?(path: string, fd: number, mode: number, offset: number, length: number, cb: ErrCb): void
}

interface FuseInstance {
  mount(cb: (err: Error | null) => void): void
  unmount(cb: (err: Error | null) => void): void
}

interface FuseClass {
  new (mnt: string, ops: FuseOps, opts: Record<string, unknown>): FuseInstance
  EDFS_PATCH?: number
  EDFS_NATIVE_PATCH?: number
}

let FuseCtor: FuseClass | undefined

function loadFuse(): FuseClass {
  if (!FuseCtor) FuseCtor = require('fuse-native') as FuseClass
  return FuseCtor
}

/**
 * Whether the loaded fuse-native carries our patch, in JS and in the native addon. Returns a
 * message describing what is missing, or null when all is well.
 */
export function checkPatch(): string | null {
  let Fuse: FuseClass
  try {
    Fuse = loadFuse()
  } catch (err) {
    return `cannot load fuse-native: ${(err as Error).message} (is libfuse 2 installed? see scripts/setup.sh)`
  }
  if ((Fuse.EDFS_PATCH ?? 0) < REQUIRED_PATCH) {
    return `fuse-native is not patched at level ${REQUIRED_PATCH} (big_writes, utimens, caller ids, inode numbers, fallocate): run \`bash scripts/setup.sh\` (it reinstalls and patches it)`
  }
  if ((Fuse.EDFS_NATIVE_PATCH ?? 0) < REQUIRED_PATCH) {
    return 'the fuse-native native addon is not built from the patched source at the current level: run `bash scripts/setup.sh --fuse-native` (needs python3, make, g++)'
  }
  return null
}

export interface MountOptions {
  /** Name shown as the source in /proc/mounts; default 'edfs'. */
  fsname?: string
  /** Type suffix: the mount type reads fuse.<subtype>; default 'edfs'. */
  subtype?: string
  /** Let other users use the mount (needs user_allow_other in /etc/fuse.conf unless root). */
  allowOther?: boolean
  /** The kernel checks permissions from the mode bits (default true). */
  defaultPermissions?: boolean
  /**
   * Whose writes the mount sees. 'self' (a read-write mount: the daemon is the volume's only writer):
   * the kernel keeps file pages across opens (kernel_cache). 'others' (a read-only mount following
   * a writer elsewhere): pages are kept only while a file's size and mtime stay the same
   * (auto_cache). Default 'others'.
   */
  writer?: 'self' | 'others'
  /** Kernel caching of attributes and names, in seconds (default 1; 0 allowed). */
  attrTimeoutSec?: number
  entryTimeoutSec?: number
  /** Answer an operation the file system has not answered after this long with ETIMEDOUT (default 60 s). */
  opTimeoutMs?: number
  /** The same for flush, fsync and release, which wait for uploads (default 10 min). */
  syncTimeoutMs?: number
  /** Log lines (stale mount cleared, ...). */
  log?: (line: string) => void
  /** Mount even when the patch is missing (with a warning). For diagnosis only. */
  allowUnpatched?: boolean
}

export const DEFAULT_OP_TIMEOUT_MS = 60_000
export const DEFAULT_SYNC_TIMEOUT_MS = 600_000

/** Operations that wait for uploads, and so get the sync timeout. */
const SYNC_OPS = new Set(['flush', 'fsync', 'release'])

/** How long an operation may go unanswered before it is answered ETIMEDOUT (deadlines.ts). */
export function opLimit(opts: MountOptions): (op: string) => number {
  const opMs = opts.opTimeoutMs ?? DEFAULT_OP_TIMEOUT_MS
  const syncMs = opts.syncTimeoutMs ?? DEFAULT_SYNC_TIMEOUT_MS
  return (op) => (SYNC_OPS.has(op) ? syncMs : opMs)
}

/** The option object fuse-native takes (exported for tests). */
export function buildFuseOptions(opts: MountOptions): Record<string, unknown> {
  return {
    bigWrites: true, // patch: 128 KiB writes instead of 4 KiB
    useIno: true, // patch: st_ino is the inode's own number, the same for every hard link
    kernelCache: opts.writer === 'self',
    autoCache: opts.writer !== 'self',
    defaultPermissions: opts.defaultPermissions ?? true,
    allowOther: opts.allowOther ?? false,
    fsname: opts.fsname ?? 'edfs',
    subtype: opts.subtype ?? 'edfs',
    // Strings: fuse-native drops falsy option values, and 0 is a valid timeout.
    attrTimeout: String(opts.attrTimeoutSec ?? 1),
    entryTimeout: String(opts.entryTimeoutSec ?? 1),
    timeout: false, // deadlines.ts answers what goes unanswered, without a timer per call
    force: false, // we clear stale mounts ourselves (clearStaleMount), and refuse live ones
    mkdir: false,
  }
}

export interface Mounted {
  readonly mountPoint: string
  unmount(): Promise<void>
}

/** Mounts `ops` at `mountPoint` in this process, after clearing a stale mount there. */
export async function mount(mountPoint: string, ops: FuseOps, opts: MountOptions = {}): Promise<Mounted> {
  const log = opts.log ?? (() => {})
  const problem = checkPatch()
  if (problem) {
    if (!opts.allowUnpatched || problem.startsWith('cannot load')) throw new Error(problem)
    log(`warning: ${problem}`)
  }
  const mnt = path.resolve(mountPoint)
  await prepareMountPoint(mnt, log)
  const Fuse = loadFuse()
  const deadlines = withDeadlines(ops, opLimit(opts), log)
  const fuse = new Fuse(mnt, deadlines.ops, buildFuseOptions(opts))
  await new Promise<void>((resolve, reject) => fuse.mount((err) => (err ? reject(err) : resolve()))).catch((err: unknown) => {
    deadlines.stop()
    throw err
  })
  let unmounting: Promise<void> | undefined
  return {
    mountPoint: mnt,
    unmount(): Promise<void> {
      unmounting ??= new Promise<void>((resolve, reject) => fuse.unmount((err) => (err ? reject(err) : resolve()))).then(() => deadlines.stop())
      return unmounting
    },
  }
}
