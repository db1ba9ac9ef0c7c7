// Commands beside a mount: while this machine's mount daemon holds the write lease, put, rm, mv,
// mkdir and gc cannot take it. They go through the mount instead: the same changes, made with
// ordinary file calls on the mount point, so the daemon applies them and the mount shows them at
// once; then an fsync of the mount's root commits them, as the command's own close would.
import { open } from 'node:fs/promises'
import { hostname } from 'node:os'
import path from 'node:path'
import { findFuseMount } from '../fuse/mount-points'
import { FsError, LeaseHeldError, type Errno } from '../volume'

export interface LocalMount {
  /** The mount point. */
  dir: string
  /** The daemon serving it. */
  pid: number
}

/** The mount of this machine whose daemon holds the lease `err` is about; null when it is not one. */
export async function localMountOf(err: unknown): Promise<LocalMount | null> {
  if (!(err instanceof LeaseHeldError)) return null
  const { lease } = err
  const m = /^\S+ pid (\d+) (\/.*)$/.exec(lease.holder) // the daemon's holder: "HOST pid PID MOUNTPOINT"
  if (lease.host !== hostname() || !m || Number(m[1]) !== lease.pid) return null
  try {
    process.kill(lease.pid, 0)
  } catch {
    return null
  }
  const dir = m[2]!
  return (await findFuseMount(dir)) ? { dir, pid: lease.pid } : null
}

/** Where a volume path is on the mount. */
export function onMount(mount: LocalMount, remote: string): string {
  return path.join(mount.dir, remote)
}

/** Commits everything done through the mount so far (fsync of its root: the daemon commits). */
export async function commitMount(mount: LocalMount): Promise<void> {
  const fh = await open(mount.dir, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

const REASONS: Partial<Record<string, string>> = {
  ENOENT: 'no such file or directory', EEXIST: 'exists', ENOTDIR: 'not a directory', EISDIR: 'is a directory',
  ENOTEMPTY: 'directory not empty', EACCES: 'permission denied', ENOSPC: 'no space on the servers', EIO: 'input/output error',
}

/** A file call on the mount failed: the same error as the command reports without a mount, naming the volume path. */
export function mountError(err: unknown, remote: string): Error {
  const code = (err as NodeJS.ErrnoException).code
  if (code && REASONS[code]) return new FsError(code as Errno, `${REASONS[code]}: ${remote}`)
  return err as Error
}
