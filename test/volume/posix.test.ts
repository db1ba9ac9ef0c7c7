// POSIX rules of the volume, without a mount (test/e2e/posix.test.ts has them through one): the
// largest file size (EFBIG, short writes, sparse files that cost only their data), special files,
// extended attributes and their limits, fallocate, symlink targets, inode numbers in readdir, the
// directory size bound — and that all of it survives a reload from the journal and a checkpoint.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { deriveVolumeKeys } from '../../src/crypto'
import {
  FALLOC_FL_KEEP_SIZE, MAX_FILE_SIZE, O_RDONLY, O_RDWR, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFREG, S_IFSOCK,
  XATTR_CREATE, XATTR_REPLACE, XATTR_SIZE_MAX, XATTR_TOTAL_MAX,
} from '../../src/volume/fs-types'
import { Volume } from '../../src/volume/volume'
import { MemoryStore } from './fixtures/memory-store'

const C = 64 * 1024

async function newVolume() {
  const store = new MemoryStore()
  const keys = deriveVolumeKeys(randomBytes(32))
  await Volume.create(store, keys, { volumeId: 'posix', chunkSize: C, replicas: 2, uid: 0, gid: 0 })
  const open = (readOnly = false) => Volume.open(store, keys, { readOnly, commitDelayMs: 5 })
  return { store, open }
}


t.test('sizes past the largest file size are EFBIG; a write across it is cut short', async (t) => {
  const { store, open } = await newVolume()
  const v = await open()
  const fh = await v.create('/f', 0o644, 0, 0, O_RDWR)
  await t.rejects(v.truncate('/f', 999999999999999), { code: 'EFBIG' }, 'truncate far past it')
  await t.rejects(v.ftruncate(fh, MAX_FILE_SIZE + 1), { code: 'EFBIG' }, 'ftruncate one byte past it')
  await v.ftruncate(fh, MAX_FILE_SIZE)
  t.equal((await v.getattr('/f')).size, MAX_FILE_SIZE, 'exactly the largest size is allowed')
  await t.rejects(v.write(fh, Buffer.from('x'), 1, MAX_FILE_SIZE), { code: 'EFBIG' }, 'a write at the limit')
  t.equal(await v.write(fh, Buffer.from('abcdef'), 6, MAX_FILE_SIZE - 2), 2, 'a write across the limit writes what fits')
  await t.rejects(v.write(fh, Buffer.from('x'), 1, -1), { code: 'EINVAL' })
  await v.fsync(fh)
  const tail = Buffer.alloc(4)
  t.equal(await v.read(fh, tail, 4, MAX_FILE_SIZE - 4), 4)
  t.same(tail, Buffer.from([0, 0, 0x61, 0x62]), 'the last bytes read back, the hole before them as zeros')
  await v.release(fh)
  const uploads = store.puts
  t.ok(uploads <= 4, `a 16 TiB sparse file costs its one data chunk (${uploads} puts), not its length`)
  t.equal(v.namespace.resolve('/f').chunks!.size, 1)
  await v.close()
  const again = await open(true)
  t.equal((await again.getattr('/f')).size, MAX_FILE_SIZE, 'kept by a reload')
  await again.close()
})

t.test('fallocate: mode 0 extends, KEEP_SIZE checks only, other modes EOPNOTSUPP', async (t) => {
  const { open } = await newVolume()
  const v = await open()
  const fh = await v.create('/f', 0o644, 0, 0, O_RDWR)
  await v.fallocate(fh, 0, 0, 3 * C + 5)
  t.equal((await v.getattr('/f')).size, 3 * C + 5)
  await v.fallocate(fh, FALLOC_FL_KEEP_SIZE, 0, 10 * C)
  t.equal((await v.getattr('/f')).size, 3 * C + 5, 'KEEP_SIZE leaves the size')
  await v.fallocate(fh, 0, 0, C)
  t.equal((await v.getattr('/f')).size, 3 * C + 5, 'a range inside the file changes nothing')
  await t.rejects(v.fallocate(fh, 0x02 | FALLOC_FL_KEEP_SIZE, 0, C), { code: 'EOPNOTSUPP' }, 'PUNCH_HOLE')
  await t.rejects(v.fallocate(fh, 0x10, 0, C), { code: 'EOPNOTSUPP' }, 'ZERO_RANGE')
  await t.rejects(v.fallocate(fh, 0, 0, 0), { code: 'EINVAL' }, 'an empty range')
  await t.rejects(v.fallocate(fh, 0, MAX_FILE_SIZE, 1), { code: 'EFBIG' })
  const ro = await v.open('/f', O_RDONLY)
  await t.rejects(v.fallocate(ro, 0, 0, 1), { code: 'EBADF' }, 'a handle open for reading')
  await v.release(ro)
  await v.release(fh)
  await v.close()
})

t.test('special files: FIFOs, sockets and devices keep their type and device number', async (t) => {
  const { open } = await newVolume()
  const v = await open()
  await v.mknod('/fifo', S_IFIFO | 0o640, 0, 5, 6)
  await v.mknod('/sock', S_IFSOCK | 0o755, 0, 0, 0)
  await v.mknod('/null', S_IFCHR | 0o666, (1 << 8) | 3, 0, 0)
  await v.mknod('/loop', S_IFBLK | 0o660, 7 << 8, 0, 0)
  await v.mknod('/plain', S_IFREG | 0o600, 0, 0, 0)
  await t.rejects(v.mknod('/fifo', S_IFIFO | 0o640, 0, 0, 0), { code: 'EEXIST' })
  await t.rejects(v.mknod('/dir', S_IFDIR | 0o755, 0, 0, 0), { code: 'EINVAL' }, 'mknod makes no directories')
  await t.rejects(v.open('/fifo', O_RDONLY), { code: 'EINVAL' }, 'the kernel opens special files, never the volume')
  const check = async (vol: Volume) => {
    t.match(await vol.getattr('/fifo'), { mode: S_IFIFO | 0o640, uid: 5, gid: 6, rdev: 0, size: 0 })
    t.match(await vol.getattr('/sock'), { mode: S_IFSOCK | 0o755 })
    t.match(await vol.getattr('/null'), { mode: S_IFCHR | 0o666, rdev: (1 << 8) | 3 })
    t.match(await vol.getattr('/loop'), { mode: S_IFBLK | 0o660, rdev: 7 << 8 })
    t.match(await vol.getattr('/plain'), { mode: S_IFREG | 0o600, size: 0 })
  }
  await check(v)
  await v.rename('/fifo', '/fifo2')
  await v.rename('/fifo2', '/fifo')
  await v.close()
  const again = await open()
  await check(again)
  await again.unlink('/null')
  await t.rejects(again.getattr('/null'), { code: 'ENOENT' })
  await again.close()
})

t.test('extended attributes: flags, limits, errors, and persistence', async (t) => {
  const { open } = await newVolume()
  const v = await open()
  await v.release(await v.create('/f', 0o644, 0, 0, O_RDWR))
  await v.mkdir('/d', 0o755, 0, 0)
  await v.symlink('f', '/l', 0, 0)
  const ctime = (await v.getattr('/f')).ctimeMs
  await new Promise((r) => setTimeout(r, 5))
  await v.setxattr('/f', 'user.a', Buffer.from('1'), 0)
  t.ok((await v.getattr('/f')).ctimeMs > ctime, 'setxattr changes ctime')
  await v.setxattr('/f', 'user.empty', Buffer.alloc(0), 0)
  await v.setxattr('/d', 'user.dir', Buffer.from('d'), 0)
  t.same((await v.getxattr('/f', 'user.empty')).length, 0, 'an empty value')
  t.same(await v.listxattr('/f'), ['user.a', 'user.empty'])
  await t.rejects(v.setxattr('/f', 'user.a', Buffer.from('2'), XATTR_CREATE), { code: 'EEXIST' }, 'XATTR_CREATE on an existing name')
  await t.rejects(v.setxattr('/f', 'user.b', Buffer.from('2'), XATTR_REPLACE), { code: 'ENODATA' }, 'XATTR_REPLACE on a missing name')
  await v.setxattr('/f', 'user.a', Buffer.from('2'), XATTR_REPLACE)
  t.equal((await v.getxattr('/f', 'user.a')).toString(), '2')
  await t.rejects(v.getxattr('/f', 'user.nope'), { code: 'ENODATA' })
  await t.rejects(v.getxattr('/f', 'security.selinux'), { code: 'EOPNOTSUPP' }, 'names outside user.* are never stored: not supported')
  await t.rejects(v.getxattr('/f', 'system.posix_acl_access'), { code: 'EOPNOTSUPP' }, 'nor POSIX ACLs')
  await t.rejects(v.removexattr('/f', 'trusted.x'), { code: 'EOPNOTSUPP' })
  await t.rejects(v.getxattr('/f', 'user.'), { code: 'ENODATA' }, 'the bare prefix names nothing')
  await t.rejects(v.setxattr('/f', 'security.x', Buffer.from('1'), 0), { code: 'EOPNOTSUPP' })
  await t.rejects(v.setxattr('/f', 'trusted.x', Buffer.from('1'), 0), { code: 'EOPNOTSUPP' })
  await t.rejects(v.setxattr('/f', 'user.', Buffer.from('1'), 0), { code: 'EOPNOTSUPP' }, 'an empty name after the prefix')
  await t.rejects(v.setxattr('/f', `user.${'n'.repeat(251)}`, Buffer.from('1'), 0), { code: 'ERANGE' }, 'a name past 255 bytes')
  await t.rejects(v.setxattr('/f', 'user.big', Buffer.alloc(XATTR_SIZE_MAX + 1), 0), { code: 'E2BIG' }, 'a value past XATTR_SIZE_MAX')
  await t.rejects(v.setxattr('/l', 'user.x', Buffer.from('1'), 0), { code: 'EPERM' }, 'user.* on a symlink')
  for (let i = 0; (i + 1) * (XATTR_SIZE_MAX + 10) <= XATTR_TOTAL_MAX; i++) await v.setxattr('/d', `user.big${i}`, Buffer.alloc(XATTR_SIZE_MAX), 0)
  await t.rejects(v.setxattr('/d', 'user.more', Buffer.alloc(XATTR_SIZE_MAX), 0), { code: 'ENOSPC' }, 'one inode holds at most XATTR_TOTAL_MAX bytes')
  await v.setxattr('/d', 'user.big0', Buffer.alloc(XATTR_SIZE_MAX, 1), 0) // replacing counts the old value out
  await v.removexattr('/f', 'user.empty')
  await t.rejects(v.removexattr('/f', 'user.empty'), { code: 'ENODATA' })
  const buf = Buffer.from('caller')
  await v.setxattr('/f', 'user.copy', buf, 0)
  buf.fill(0)
  t.equal((await v.getxattr('/f', 'user.copy')).toString(), 'caller', 'the value is copied (libfuse reuses its buffer)')
  await v.close()
  const check = async (vol: Volume) => {
    t.same(await vol.listxattr('/f'), ['user.a', 'user.copy'])
    t.equal((await vol.getxattr('/f', 'user.a')).toString(), '2')
    t.same(await vol.getxattr('/d', 'user.big0'), Buffer.alloc(XATTR_SIZE_MAX, 1))
  }
  const fromJournal = await open()
  await check(fromJournal)
  await fromJournal['log'].checkpoint(fromJournal.namespace)
  await fromJournal.close()
  const fromCheckpoint = await open(true)
  await check(fromCheckpoint)
  await t.rejects(fromCheckpoint.setxattr('/f', 'user.a', Buffer.from('1'), 0), { code: 'EROFS' })
  await fromCheckpoint.close()
})

t.test('symlink targets, readdir inode numbers, and the directory size bound', async (t) => {
  const { open } = await newVolume()
  const v = await open()
  await v.symlink('a'.repeat(4095), '/long', 0, 0)
  t.equal((await v.readlink('/long')).length, 4095)
  await t.rejects(v.symlink('a'.repeat(4096), '/longer', 0, 0), { code: 'ENAMETOOLONG' })
  await t.rejects(v.symlink('', '/empty', 0, 0), { code: 'ENOENT' })
  await v.mkdir('/d', 0o755, 0, 0)
  await v.release(await v.create('/d/f', 0o644, 0, 0, O_RDWR))
  await v.link('/d/f', '/d/g')
  const entries = [...(await v.readdir('/d'))]
  const ino = (await v.getattr('/d/f')).ino
  t.same(entries.map((e) => [e.name, e.ino, e.mode]), [['f', ino, S_IFREG | 0o644], ['g', ino, S_IFREG | 0o644]], 'names with their inode number and type')
  t.equal((await v.getattr('/d/g')).ino, ino, 'a hard link is the same inode')
  t.not((await v.getattr('/d')).ino, ino)
  v.namespace.maxDirEntries = 3
  await v.mknod('/d/h', S_IFIFO | 0o644, 0, 0, 0)
  await t.rejects(v.mknod('/d/i', S_IFIFO | 0o644, 0, 0, 0), { code: 'ENOSPC' }, 'a full directory')
  await t.rejects(v.link('/d/f', '/d/j'), { code: 'ENOSPC' })
  await t.rejects(v.rename('/long', '/d/long'), { code: 'ENOSPC' }, 'a rename into a full directory')
  await v.rename('/d/h', '/d/h2')
  t.pass('a rename inside a full directory still works')
  await v.close()
})

t.test('owners, groups and times: setgid directories, chown -1, utimens null, read-only', async (t) => {
  const { open } = await newVolume()
  const v = await open()
  await v.mkdir('/shared', 0o2775, 1000, 50)
  t.equal((await v.getattr('/shared')).mode & 0o7777, 0o2775, 'the setgid bit is kept on mkdir')
  await v.mkdir('/shared/sub', 0o755, 1001, 60)
  await v.release(await v.create('/shared/f', 0o644, 1001, 60, O_RDWR))
  await v.symlink('f', '/shared/l', 1001, 60)
  await v.mknod('/shared/p', S_IFIFO | 0o644, 0, 1001, 60)
  t.match(await v.getattr('/shared/sub'), { uid: 1001, gid: 50, mode: S_IFDIR | 0o2755 }, 'a new directory takes the group and inherits the bit')
  for (const name of ['f', 'l', 'p']) {
    const a = await v.getattr(`/shared/${name}`)
    t.match(a, { uid: 1001, gid: 50 }, `${name}: the setgid directory's group, the caller's uid`)
    t.equal(a.mode & 0o2000, 0, `${name}: no setgid bit on a non-directory`)
  }
  await v.mkdir('/plain', 0o755, 1001, 60)
  t.match(await v.getattr('/plain'), { uid: 1001, gid: 60, mode: S_IFDIR | 0o755 }, 'elsewhere: the caller\'s group')

  await v.chown('/shared/f', 0xffffffff, 70)
  t.match(await v.getattr('/shared/f'), { uid: 1001, gid: 70 }, 'chown -1 (uid_t) keeps the uid')
  await v.chown('/shared/f', 1002, -1)
  t.match(await v.getattr('/shared/f'), { uid: 1002, gid: 70 }, 'chown -1 keeps the gid')

  await v.utimens('/shared/f', 5000, 6000)
  await v.utimens('/shared/f', null, 9000)
  t.match(await v.getattr('/shared/f'), { atimeMs: 5000, mtimeMs: 9000 }, 'a null atime stays')
  await v.utimens('/shared/f', 7000, null)
  t.match(await v.getattr('/shared/f'), { atimeMs: 7000, mtimeMs: 9000 }, 'a null mtime stays')
  const before = await v.getattr('/shared/f')
  await new Promise((r) => setTimeout(r, 5))
  await v.utimens('/shared/f', null, null)
  t.same(await v.getattr('/shared/f'), before, 'both null: nothing changes, not even ctime')
  await v.access('/shared/f', 2)
  await t.rejects(v.access('/nope', 0), { code: 'ENOENT' }, 'access of a missing path')
  await v.close()

  const ro = await open(true)
  t.teardown(() => ro.close())
  await ro.access('/shared/f', 4)
  await t.rejects(ro.access('/shared/f', 2), { code: 'EROFS' }, 'W_OK on a read-only volume')
  await t.rejects(ro.mkdir('/x', 0o755, 0, 0), { code: 'EROFS' })
  await t.rejects(ro.open('/shared/f', O_RDWR), { code: 'EROFS' }, 'open for writing')
  await t.rejects(ro.chown('/shared/f', 0, 0), { code: 'EROFS' })
  await t.rejects(ro.utimens('/shared/f', 1, 1), { code: 'EROFS' })
  t.match(await ro.getattr('/shared/sub'), { gid: 50 }, 'the inherited group survived the reload')
})
