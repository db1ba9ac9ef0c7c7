// Extended attributes: the user.* namespace, stored sealed with the inode (journal 'xattr' entries,
// checkpoints). The errors are Linux's: ENODATA for a missing name, EEXIST/ENODATA for the
// XATTR_CREATE/XATTR_REPLACE flags, ERANGE for a name that is too long, E2BIG for a value past
// XATTR_SIZE_MAX, ENOSPC when one inode's attributes would pass XATTR_TOTAL_MAX (ext4 says ENOSPC
// when its xattr block is full), EPERM for user.* on anything but files and directories.
import {
  FsError, XATTR_CREATE, XATTR_NAME_MAX, XATTR_REPLACE, XATTR_SIZE_MAX, XATTR_TOTAL_MAX,
} from './fs-types'
import type { Inode, Namespace } from './namespace'

const USER_PREFIX = 'user.'

/**
 * Only user.* names are kept. Another namespace is EOPNOTSUPP whatever the call (the kernel's answer
 * for a prefix a file system has no handler for; the mount's binding answers the same without
 * reaching JS), which ls -l and getfacl take as "not supported here" and stop asking per file.
 * The bare prefix `user.` is never stored: setting it is EOPNOTSUPP, reading or removing ENODATA.
 */
function checkName(name: string, setting = false): void {
  const unsupported = () => new FsError('EOPNOTSUPP', `only user.* extended attributes are supported: ${JSON.stringify(name)}`)
  if (!name.startsWith(USER_PREFIX)) throw unsupported()
  if (name.length === USER_PREFIX.length) {
    if (setting) throw unsupported()
    throw new FsError('ENODATA', `no such extended attribute: ${JSON.stringify(name)}`)
  }
  if (Buffer.byteLength(name) > XATTR_NAME_MAX) throw new FsError('ERANGE', `extended attribute name longer than ${XATTR_NAME_MAX} bytes`)
}

/** Bytes an inode's attributes take: names and values, as ext4 counts its xattr block. */
function totalBytes(node: Inode, without?: string): number {
  let n = 0
  for (const [name, value] of node.xattrs ?? []) if (name !== without) n += Buffer.byteLength(name) + value.length
  return n
}

export function setXattr(ns: Namespace, node: Inode, name: string, value: Buffer, flags: number): void {
  checkName(name, true)
  if (node.kind !== 'file' && node.kind !== 'dir') throw new FsError('EPERM', 'user.* extended attributes are only for files and directories')
  if (value.length > XATTR_SIZE_MAX) throw new FsError('E2BIG', `extended attribute value of ${value.length} bytes (at most ${XATTR_SIZE_MAX})`)
  const exists = node.xattrs?.has(name) ?? false
  if (flags & XATTR_CREATE && exists) throw new FsError('EEXIST', `extended attribute exists: ${name}`)
  if (flags & XATTR_REPLACE && !exists) throw new FsError('ENODATA', `no such extended attribute: ${name}`)
  if (totalBytes(node, name) + Buffer.byteLength(name) + value.length > XATTR_TOTAL_MAX) {
    throw new FsError('ENOSPC', `the extended attributes of one file take at most ${XATTR_TOTAL_MAX} bytes`)
  }
  ns.setXattr(node, name, Buffer.from(value)) // a copy: the caller's buffer may be libfuse memory
}

export function getXattr(node: Inode, name: string): Buffer {
  checkName(name)
  const value = node.xattrs?.get(name)
  if (!value) throw new FsError('ENODATA', `no such extended attribute: ${name}`)
  return value
}

export function listXattrs(node: Inode): string[] {
  return [...(node.xattrs?.keys() ?? [])]
}

export function removeXattr(ns: Namespace, node: Inode, name: string): void {
  checkName(name)
  if (!node.xattrs?.has(name)) throw new FsError('ENODATA', `no such extended attribute: ${name}`)
  ns.setXattr(node, name, null)
}
