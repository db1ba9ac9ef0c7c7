// The file-system interface the volume offers to its users (the FUSE adapter, the CLI). Paths are
// absolute, '/'-separated, as FUSE passes them. Failures are FsError with the errno name that
// ext4 would give for the same call.

export type Errno =
  | 'ENOENT' | 'EEXIST' | 'ENOTEMPTY' | 'EISDIR' | 'ENOTDIR' | 'ENAMETOOLONG' | 'EINVAL'
  | 'EIO' | 'ENOSPC' | 'EROFS' | 'EBADF' | 'EPERM' | 'EACCES' | 'ELOOP' | 'EFBIG' | 'EXDEV' | 'EAGAIN' | 'EBUSY'
  | 'ENODATA' | 'ERANGE' | 'E2BIG' | 'EOPNOTSUPP' | 'ENOMEM'

/** A failure with its errno. Expected (ENOENT on every lookup of a new name): no stack trace is taken. */
export class FsError extends Error {
  constructor(readonly code: Errno, message: string) {
    const limit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    super(`${code}: ${message}`)
    Error.stackTraceLimit = limit
    this.name = 'FsError'
  }
}

export const S_IFMT = 0o170000
export const S_IFDIR = 0o040000
export const S_IFREG = 0o100000
export const S_IFLNK = 0o120000
export const S_IFIFO = 0o010000
export const S_IFCHR = 0o020000
export const S_IFBLK = 0o060000
export const S_IFSOCK = 0o140000

/** Whether `mode`'s type is a FIFO, socket or device node (what mknod makes besides regular files). */
export function isSpecialType(mode: number): boolean {
  const type = mode & S_IFMT
  return type === S_IFIFO || type === S_IFCHR || type === S_IFBLK || type === S_IFSOCK
}

/**
 * Largest file size: 16 TiB, ext4's limit with 4 KiB blocks. Sizes and offsets stay exact in a JS
 * number far below it, and a sparse file of this size costs nothing but its data. A truncate,
 * fallocate or write past it fails with EFBIG (a write that crosses it is cut short, as on ext4).
 */
export const MAX_FILE_SIZE = 2 ** 44

/** Longest symlink target in bytes (PATH_MAX less the terminating NUL, as Linux allows). */
export const MAX_SYMLINK_BYTES = 4095

/** Extended attributes: Linux's own bounds on a name and a value, and ours on one inode's total. */
export const XATTR_NAME_MAX = 255
export const XATTR_SIZE_MAX = 65536
export const XATTR_TOTAL_MAX = 256 * 1024
/** setxattr flags. */
export const XATTR_CREATE = 1
export const XATTR_REPLACE = 2

/** fallocate modes (linux/falloc.h): only 0 and KEEP_SIZE are supported. */
export const FALLOC_FL_KEEP_SIZE = 0x01

export interface Attr {
  /** The inode number (st_ino): every name of a file shows the same one. */
  ino: number
  /** File type and permission bits, as in st_mode. */
  mode: number
  nlink: number
  uid: number
  gid: number
  size: number
  atimeMs: number
  mtimeMs: number
  ctimeMs: number
  /** Device number of a character or block device, else 0. */
  rdev: number
}

/** One name in a directory listing, with what readdir reports of it (d_ino, d_type). */
export interface DirEntry {
  name: string
  ino: number
  mode: number
}

/**
 * A directory's names as of the moment it was listed, read by position: taking it costs one copy of
 * the (name, inode) pairs, and each entry is looked up only when asked for, so a directory of a
 * million names is listed a page at a time without a long stretch of work on the event loop.
 */
export interface DirListing extends Iterable<DirEntry> {
  readonly size: number
  /** The entry at position i (0 <= i < size), or null when it is gone since the listing was taken. */
  entry(i: number): DirEntry | null
}

export interface StatFs {
  blockSize: number
  totalBytes: number
  freeBytes: number
  files: number
  maxNameLength: number
}

/** Flags of open(2) that the volume looks at. */
export const O_ACCMODE = 0o3
export const O_RDONLY = 0o0
export const O_WRONLY = 0o1
export const O_RDWR = 0o2
export const O_TRUNC = 0o1000
export const O_APPEND = 0o2000
/** access(2)'s write bit. */
export const W_OK = 2

/**
 * What a mount asks of a file system, one call per FUSE operation. The file system applies the POSIX
 * rules itself (posix-attrs.ts), so the FUSE adapter only delegates: a read-only file system refuses
 * every change with EROFS; `uid`/`gid` of new entries are the caller's, and the file system gives an
 * entry in a setgid directory that directory's group; `mode` of mkdir and create is the permission
 * bits asked for (the file system sets the type).
 */
export interface FileSystem {
  getattr(path: string): Promise<Attr>
  /** access(2) beyond the permission bits (the kernel checks those): the path exists; W_OK on a read-only file system is EROFS. */
  access(path: string, mode: number): Promise<void>
  /** Entries of the directory, without '.' and '..'. */
  readdir(path: string): Promise<DirListing>
  mkdir(path: string, mode: number, uid: number, gid: number): Promise<void>
  /** mknod(2): `mode` holds the type (FIFO, socket, device or regular file) and permission bits. */
  mknod(path: string, mode: number, rdev: number, uid: number, gid: number): Promise<void>
  rmdir(path: string): Promise<void>
  unlink(path: string): Promise<void>
  /** Replaces an existing target as rename(2) does (a directory only by an empty directory). */
  rename(from: string, to: string): Promise<void>
  link(existing: string, newPath: string): Promise<void>
  symlink(target: string, path: string, uid: number, gid: number): Promise<void>
  readlink(path: string): Promise<string>
  chmod(path: string, mode: number): Promise<void>
  /** An id of -1 (or 0xffffffff, uid_t's -1) stays as it is. */
  chown(path: string, uid: number, gid: number): Promise<void>
  /** A null time (UTIME_OMIT) stays as it is. */
  utimens(path: string, atimeMs: number | null, mtimeMs: number | null): Promise<void>
  /** Extended attributes (only user.* names reach the file system). */
  setxattr(path: string, name: string, value: Buffer, flags: number): Promise<void>
  getxattr(path: string, name: string): Promise<Buffer>
  listxattr(path: string): Promise<string[]>
  removexattr(path: string, name: string): Promise<void>
  truncate(path: string, size: number): Promise<void>
  /** Creates (or, without O_EXCL semantics, opens) a regular file; returns a file handle. */
  create(path: string, mode: number, uid: number, gid: number, flags: number): Promise<number>
  open(path: string, flags: number): Promise<number>
  /** Reads up to `length` bytes at `position` into `buffer`; returns the count (0 at end of file). */
  read(fh: number, buffer: Buffer, length: number, position: number): Promise<number>
  /** Writes `length` bytes of `buffer` at `position` (buffered: returns at memory speed). */
  write(fh: number, buffer: Buffer, length: number, position: number): Promise<number>
  ftruncate(fh: number, size: number): Promise<void>
  /** fallocate(2): mode 0 may extend the size; FALLOC_FL_KEEP_SIZE only checks the range. */
  fallocate(fh: number, mode: number, offset: number, length: number): Promise<void>
  /** close(2) of one descriptor: the file's data and metadata are committed when it returns. */
  flush(fh: number): Promise<void>
  fsync(fh: number): Promise<void>
  /** Everything written so far, to any file, is durable when this returns (fsync of a directory, `edfs sync`). */
  sync(): Promise<void>
  release(fh: number): Promise<void>
  statfs(): Promise<StatFs>
}
