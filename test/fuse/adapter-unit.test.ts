// The adapter without a mount: errno mapping, stat/statfs conversion, option building, and the
// operations' delegation (chown -1 and utimens null reach the file system as they are; read-only
// answers come from it; bad handles). The POSIX rules themselves: test/volume/posix.test.ts.
import t from 'tap'
import { createFuseOps, toFuseStat, toFuseStatfs } from '../../src/fuse/adapter'
import { buildFuseOptions, opLimit, type FuseOps } from '../../src/fuse/binding'
import { ERRNO, errnoOf, toErrno } from '../../src/fuse/errno'
import { FsError, type FileSystem } from '../../src/volume/fs-types'
import { newVolume } from '../volume/fixtures/new-volume'
import { MemoryFs } from './fixtures/memory-fs'

t.test('errno mapping', async (t) => {
  t.equal(toErrno(new FsError('ENOENT', 'x')), -2)
  t.equal(toErrno(new FsError('EEXIST', 'x')), -17)
  t.equal(toErrno(new FsError('ENOTEMPTY', 'x')), -39)
  t.equal(toErrno(new FsError('EISDIR', 'x')), -21)
  t.equal(toErrno(new FsError('ENOTDIR', 'x')), -20)
  t.equal(toErrno(new FsError('ENOSPC', 'x')), -28)
  t.equal(toErrno(new FsError('EROFS', 'x')), -30)
  t.equal(toErrno(new FsError('EBUSY' as never, 'x')), -16)
  t.equal(errnoOf('NOPE'), undefined)
  const seen: unknown[] = []
  t.equal(toErrno(new Error('boom'), (e) => seen.push(e)), ERRNO.EIO, 'a plain Error is EIO')
  t.equal(toErrno(new FsError('EWHAT' as never, 'x'), (e) => seen.push(e)), ERRNO.EIO, 'an unknown code is EIO')
  const lookalike = Object.assign(new Error('x'), { name: 'FsError', code: 'EACCES' })
  t.equal(toErrno(lookalike, (e) => seen.push(e)), ERRNO.EIO, 'only a real FsError maps: an error merely named so is EIO')
  t.equal(seen.length, 3, 'all three reported as unexpected')
})

t.test('stat and statfs conversion', async (t) => {
  const st = toFuseStat({ ino: 2 ** 40 + 5, mode: 0o100644, nlink: 1, uid: 1, gid: 2, size: 1000, atimeMs: 1.7, mtimeMs: 2000.9, ctimeMs: 3, rdev: 0 })
  t.match(st, { ino: 2 ** 40 + 5, mode: 0o100644, uid: 1, gid: 2, size: 1000, atime: 1, mtime: 2000, ctime: 3, blocks: 2 })
  const big = toFuseStatfs({ blockSize: 4096, totalBytes: 2 ** 50, freeBytes: 2 ** 49, files: 10, maxNameLength: 255 })
  t.ok(big.blocks <= 0xffffffff && big.blocks * big.frsize === 2 ** 50, 'a 1 PiB volume fits the uint32 fields')
  t.equal(big.bfree * big.frsize, 2 ** 49)
  const small = toFuseStatfs({ blockSize: 4096, totalBytes: 1 << 30, freeBytes: 1 << 29, files: 3, maxNameLength: 255 })
  t.match(small, { bsize: 4096, frsize: 4096, blocks: 262144, bfree: 131072, namemax: 255 })
})

t.test('fuse-native options', async (t) => {
  const o = buildFuseOptions({ allowOther: true, attrTimeoutSec: 0, opTimeoutMs: 5000 })
  t.match(o, { bigWrites: true, defaultPermissions: true, allowOther: true, fsname: 'edfs', subtype: 'edfs', attrTimeout: '0', entryTimeout: '1' })
  t.equal(o.timeout, false, 'no timer per call in fuse-native: deadlines.ts answers late calls')
  const limit = opLimit({ opTimeoutMs: 5000 })
  t.same(['getattr', 'read', 'flush', 'fsync', 'release'].map(limit), [5000, 5000, 600000, 600000, 600000])
})

function call<T>(fn: (cb: (err: number, v?: T) => void) => void): Promise<[number, T | undefined]> {
  return new Promise((resolve) => fn((err, v) => resolve([err, v])))
}

t.test('operations', async (t) => {
  const fs = new MemoryFs()
  const logged: string[] = []
  const ops = createFuseOps(fs, { log: (l) => logged.push(l), owner: { uid: 7, gid: 8 } }) as Required<FuseOps>
  t.same(await call((cb) => ops.mkdir('/d', 0o40755, cb)), [0, undefined])
  const [, a] = await call<{ mode: number; uid: number }>((cb) => ops.getattr('/d', cb))
  t.equal(a!.mode, 0o40755, 'directory with the type set by the file system')
  t.equal(a!.uid, 7, 'owned by the configured owner')
  const [err, fh] = await call<number>((cb) => ops.create('/d/f', 0o100640, cb))
  t.equal(err, 0)
  t.ok(fh! >= 1)
  const [, dh] = await call<number>((cb) => ops.opendir('/d', 0, cb))
  const listing = await new Promise<unknown[]>((resolve) => ops.readdir('/d', (...args) => resolve(args), 0, dh))
  const [, dirAttr] = await call<{ ino?: number }>((cb) => ops.getattr('/d', cb))
  const [, fileAttr] = await call<{ ino?: number; mode: number }>((cb) => ops.getattr('/d/f', cb))
  t.same(listing[1], ['.', '..', 'f'])
  t.match(listing[2], [{ ino: dirAttr!.ino }, { ino: 1 }, { ino: fileAttr!.ino, mode: fileAttr!.mode }], 'a stat per name: d_ino and d_type')
  t.equal(listing[3], undefined, 'a small directory whole, without a base (libfuse keeps it)')
  t.same(await call((cb) => ops.releasedir('/d', dh!, cb)), [0, undefined])
  t.same(await call((cb) => ops.readdir('/d', cb as never, 0, dh)), [-9, undefined], 'a released stream is EBADF')
  t.same(await call((cb) => ops.getattr('/nope', cb)), [-2, undefined], 'ENOENT')
  t.same(await call((cb) => ops.rmdir('/d', cb)), [-39, undefined], 'ENOTEMPTY')

  t.same(await call((cb) => ops.chown('/d/f', 0xffffffff, 99, cb)), [0, undefined])
  let [, st] = await call<{ uid: number; gid: number }>((cb) => ops.getattr('/d/f', cb))
  t.match(st, { uid: 7, gid: 99 }, 'chown -1 keeps the uid')

  t.same(await call((cb) => ops.utimens('/d/f', 5000, 6000, cb)), [0, undefined])
  t.same(await call((cb) => ops.utimens('/d/f', null, 9000, cb)), [0, undefined])
  ;[, st] = await call((cb) => ops.getattr('/d/f', cb))
  t.match(st, { atime: 5000, mtime: 9000 }, 'utimens null keeps that time')

  const n = await new Promise<number>((r) => ops.write('/d/f', fh!, Buffer.from('hello'), 5, 0, r))
  t.equal(n, 5)
  const buf = Buffer.alloc(16)
  t.equal(await new Promise<number>((r) => ops.read('/d/f', fh!, buf, 16, 0, r)), 5)
  t.equal(buf.subarray(0, 5).toString(), 'hello')
  t.equal(await new Promise<number>((r) => ops.read('/d/f', 424242, buf, 16, 0, r)), -9, 'EBADF')
  t.same(await call((cb) => ops.fsync('/d/f', 1, fh!, cb)), [0, undefined], 'fsync(path, datasync, fd)')
  t.same(fs.stats.fsyncs, [{ fh, path: '/d/f' }])

  const broken = { ...fs, getattr: () => Promise.reject(new TypeError('bug')) } as unknown as FileSystem
  const bops = createFuseOps(broken, { log: (l) => logged.push(l) })
  t.same(await call((cb) => bops.getattr('/x', cb)), [-5, undefined], 'an unexpected error is EIO')
  t.match(logged.join('\n'), /getattr \/x: unexpected error \(EIO\): TypeError: bug/, 'and is logged')

  const sync = { unlink: () => { throw new FsError('EPERM', 'sync throw') } } as unknown as FileSystem
  t.same(await call((cb) => createFuseOps(sync).unlink!('/x', cb)), [-1, undefined], 'a synchronous throw still answers')

  const badHandle = { open: async () => 2 ** 40, release: async () => {} } as unknown as FileSystem
  t.same(await call((cb) => createFuseOps(badHandle, { log: (l) => logged.push(l) }).open!('/x', 0, cb)), [-5, undefined], 'a handle beyond int32 is refused')

  const ro = createFuseOps(new MemoryFs({ readOnly: true })) as Required<FuseOps>
  t.same(await call((cb) => ro.mkdir('/x', 0o755, cb)), [-30, undefined], 'EROFS on a read-only volume')
  t.same(await call((cb) => ro.access('/', 2, cb)), [-30, undefined], 'access W_OK: EROFS')
  t.same(await call((cb) => ro.access('/', 4, cb)), [0, undefined], 'access R_OK: allowed')
})

t.test('readdir pages: every name once, as libfuse asks from the last offset; names removed meanwhile are skipped', async (t) => {
  const { open } = await newVolume({ volumeId: 'pages', chunkSize: 1 << 20 })
  const volume = await open(false, { commitDelayMs: 60_000 })
  t.teardown(() => volume.close())
  const ops = createFuseOps(volume, { log: () => {}, owner: { uid: 0, gid: 0 } }) as Required<FuseOps>
  await call((cb) => ops.mkdir('/big', 0o755, cb))
  const N = 1000
  for (let i = 0; i < N; i++) {
    const [, fh] = await call<number>((cb) => ops.create(`/big/f${i}`, 0o644, cb))
    await call((cb) => ops.release(`/big/f${i}`, fh!, cb))
  }
  const [, dh] = await call<number>((cb) => ops.opendir('/big', 0, cb))
  const seen: string[] = []
  let offset = 0
  let calls = 0
  for (;;) {
    const [err, names, , base] = await new Promise<unknown[]>((resolve) => ops.readdir('/big', (...a) => resolve(a), offset, dh))
    t.equal(err, 0)
    const page = names as string[]
    if (page.length === 0) break
    calls++
    // libfuse fills the kernel's buffer with some of the page and asks again from the last one it took.
    const taken = page.slice(0, 100)
    seen.push(...taken)
    offset = (base as number) + taken.length
    if (calls === 3) await call((cb) => ops.unlink('/big/f900', cb)) // gone before its page
    t.ok(page.length <= 256, 'a page is bounded')
  }
  t.same(seen.slice(0, 2), ['.', '..'])
  const files = seen.slice(2)
  t.equal(new Set(files).size, files.length, 'no name twice')
  t.notOk(files.includes('f900'), 'a name removed before its page is not listed')
  t.equal(files.length, N - 1, `every other name once (${calls} calls)`)
  await call((cb) => ops.releasedir('/big', dh!, cb))

  // A directory that fits in one page: answered whole, without a base, so libfuse keeps the
  // listing and answers the kernel's later READDIRs without calling JS again.
  await call((cb) => ops.mkdir('/small', 0o755, cb))
  for (const name of ['a', 'b', 'c']) {
    const [, fh] = await call<number>((cb) => ops.create(`/small/${name}`, 0o644, cb))
    await call((cb) => ops.release(`/small/${name}`, fh!, cb))
  }
  const [, sh] = await call<number>((cb) => ops.opendir('/small', 0, cb))
  const [err, names, stats, base] = await new Promise<unknown[]>((resolve) => ops.readdir('/small', (...a) => resolve(a), 0, sh))
  t.equal(err, 0)
  t.same(names, ['.', '..', 'a', 'b', 'c'], 'every name at once')
  t.equal((stats as unknown[]).length, 5, 'each with its stat')
  t.equal(base, undefined, 'no base: libfuse buffers the whole listing (non-offset mode)')
  await call((cb) => ops.releasedir('/small', sh!, cb))
})
