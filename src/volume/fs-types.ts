// The file-system interface the volume offers to its users (the FUSE adapter, the CLI). Paths are
// absolute, '/'-separated, as FUSE passes them. Failures are FsError with the errno name that
// ext4 would give for the same call.

export type Errno =
  | 'ENOENT' | 'EEXIST' | 'ENOTEMPTY' | 'EISDIR' | 'ENOTDIR' | 'ENAMETOOLONG' | 'EINVAL'
  | 'EIO' | 'ENOSPC' | 'EROFS' | 'EBADF' | 'EPERM' | 'EACCES' | 'ELOOP' | 'EFBIG' | 'EXDEV' | 'EAGAIN' | 'EBUSY'

export class FsError extends Error {
  constructor(readonly code: Errno, message: string) {
    super(`${code}: ${message}`)
    this.name = 'FsError'
  }
}

export const S_IFMT = 0o170000
export const S_IFDIR = 0o040000
export const S_IFREG = 0o100000
export const S_IFLNK = 0o120000

export interface Attr {
  /** File type and permission bits, as in st_mode. */
  mode: number
  nlink: number
  uid: number
  gid: number
  size: number
  atimeMs: number
  mtimeMs: number
  ctimeMs: number
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

export interface FileSystem {
  readonly readOnly: boolean
  getattr(path: string): Promise<Attr>
  /** Names in the directory, without '.' and '..'. */
  readdir(path: string): Promise<string[]>
  mkdir(path: string, mode: number, uid: number, gid: number): Promise<void>
  rmdir(path: string): Promise<void>
  unlink(path: string): Promise<void>
  /** Replaces an existing target as rename(2) does (a directory only by an empty directory). */
  rename(from: string, to: string): Promise<void>
  link(existing: string, newPath: string): Promise<void>
  symlink(target: string, path: string, uid: number, gid: number): Promise<void>
  readlink(path: string): Promise<string>
  chmod(path: string, mode: number): Promise<void>
  chown(path: string, uid: number, gid: number): Promise<void>
  utimens(path: string, atimeMs: number, mtimeMs: number): Promise<void>
  truncate(path: string, size: number): Promise<void>
  /** Creates (or, without O_EXCL semantics, opens) a regular file; returns a file handle. */
  create(path: string, mode: number, uid: number, gid: number, flags: number): Promise<number>
  open(path: string, flags: number): Promise<number>
  /** Reads up to `length` bytes at `position` into `buffer`; returns the count (0 at end of file). */
  read(fh: number, buffer: Buffer, length: number, position: number): Promise<number>
  /** Writes `length` bytes of `buffer` at `position` (buffered: returns at memory speed). */
  write(fh: number, buffer: Buffer, length: number, position: number): Promise<number>
  ftruncate(fh: number, size: number): Promise<void>
  /** close(2) of one descriptor: the file's data and metadata are committed when it returns. */
  flush(fh: number): Promise<void>
  fsync(fh: number): Promise<void>
  release(fh: number): Promise<void>
  statfs(): Promise<StatFs>
}
