// Path handling: split an absolute path into checked components.
import { FsError } from './fs-types'

export const MAX_NAME_BYTES = 255

/** The components of an absolute path; '.' and empty parts are dropped, '..' is refused. */
export function splitPath(path: string): string[] {
  if (!path.startsWith('/')) throw new FsError('EINVAL', `not an absolute path: ${path}`)
  const parts: string[] = []
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue
    checkName(part)
    parts.push(part)
  }
  return parts
}

/** Checks one directory entry name as ext4 would. */
export function checkName(name: string): void {
  if (name === '..') throw new FsError('EINVAL', `'..' is not allowed in a path`)
  if (name.includes('\0')) throw new FsError('EINVAL', 'a name cannot contain NUL')
  if (name.includes('/')) throw new FsError('EINVAL', `a name cannot contain '/': ${name}`)
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw new FsError('ENAMETOOLONG', `name longer than ${MAX_NAME_BYTES} bytes`)
}

/** [parent components, last name]; the root has no last name. */
export function splitParent(path: string): { parent: string[]; name: string } {
  const parts = splitPath(path)
  const name = parts.pop()
  if (name === undefined) throw new FsError('EEXIST', 'the root directory')
  return { parent: parts, name }
}

export function joinPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`
}
