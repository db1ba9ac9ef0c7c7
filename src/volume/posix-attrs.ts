// The POSIX rules for who owns a new entry and what chown and utimens leave as they are. One place,
// so every FileSystem applies them alike (the volume, and the in-memory one the FUSE tests mount)
// and the FUSE adapter only delegates.

export const S_ISGID = 0o2000

/** chown(2)'s -1, "leave this id", as it arrives: signed, or as uid_t through FUSE. */
export function isUnchangedId(id: number): boolean {
  return id === -1 || id === 0xffffffff
}

/**
 * Mode, owner and group of an entry that `caller` makes in `parent` (`mode`: the permission bits
 * asked for). In a setgid directory the group is the directory's, and a new directory inherits the
 * bit (as ext4 does).
 */
export function newEntryAttrs(
  parent: { mode: number; gid: number },
  caller: { uid: number; gid: number },
  mode: number,
  isDir: boolean,
): { mode: number; uid: number; gid: number } {
  if (!(parent.mode & S_ISGID)) return { mode, uid: caller.uid, gid: caller.gid }
  return { mode: isDir ? mode | S_ISGID : mode, uid: caller.uid, gid: parent.gid }
}

/** The ids after chown(uid, gid): an unchanged id (-1) keeps the current one. */
export function chownIds(current: { uid: number; gid: number }, uid: number, gid: number): { uid: number; gid: number } {
  return { uid: isUnchangedId(uid) ? current.uid : uid, gid: isUnchangedId(gid) ? current.gid : gid }
}

/**
 * The times after utimens(atime, mtime): null (UTIME_OMIT) keeps the current one. Both null: null,
 * nothing changes (not even ctime).
 */
export function utimensTimes(
  current: { atimeMs: number; mtimeMs: number },
  atimeMs: number | null,
  mtimeMs: number | null,
): { atimeMs: number; mtimeMs: number } | null {
  if (atimeMs === null && mtimeMs === null) return null
  return { atimeMs: atimeMs ?? current.atimeMs, mtimeMs: mtimeMs ?? current.mtimeMs }
}
