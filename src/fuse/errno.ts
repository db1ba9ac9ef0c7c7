// FsError codes -> the negative errno numbers fuse-native answers with. The numbers come from
// node's os.constants.errno (this platform's values), so every errno name the volume may use maps
// without a table to keep in step. Anything that is not an FsError (or has an unknown code) is an
// internal failure: EIO.
import { constants } from 'node:os'
import { FsError } from '../volume/fs-types'

const SYSTEM = constants.errno as Readonly<Record<string, number | undefined>>

function neg(name: string, linux: number): number {
  return -(SYSTEM[name] ?? linux)
}

/** The errno values the adapter answers with itself. */
export const ERRNO = {
  EIO: neg('EIO', 5),
  EMFILE: neg('EMFILE', 24),
} as const

/** The negative errno for an errno name, or undefined when the name is unknown. */
export function errnoOf(code: string): number | undefined {
  const n = SYSTEM[code]
  return typeof n === 'number' && n > 0 ? -n : undefined
}

/** The negative errno for a failure; `unexpected` is told about anything that is not an FsError. */
export function toErrno(err: unknown, unexpected?: (err: unknown) => void): number {
  if (err instanceof FsError) {
    const n = errnoOf(err.code)
    if (n !== undefined) return n
  }
  unexpected?.(err)
  return ERRNO.EIO
}
