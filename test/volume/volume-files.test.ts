// File semantics of the volume over an in-memory store (close-to-open mode, syncClose; write-back is
// in write-back.test.ts): sizes around chunk boundaries, random writes against a reference,
// truncate, back-pressure, small files inline, holes, links, attributes, a reader following the
// writer. The lease is in lease.test.ts, the head and journal in metadata.test.ts.
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY } from '../../src/volume/fs-types'
import { INLINE_MAX } from '../../src/volume/namespace'
import { Volume } from '../../src/volume/volume'
import { errorCodeOf, readAll, writeWhole } from './fixtures/file-io'
import type { ByteRange } from '../../src/volume/store'
import { TEST_CHUNK as C, newVolume as newTestVolume } from './fixtures/new-volume'

const newVolume = (opts: { chunkSize?: number } = {}) => newTestVolume({ volumeId: 'v1', ...opts, openWith: { syncClose: true } })

t.test('sizes around chunk boundaries round-trip, also after reopening', async (t) => {
  const { open } = await newVolume()
  const v = await open()
  const sizes = [0, 1, C - 1, C, C + 1, 3 * C + 17]
  const files = new Map(sizes.map((s) => [`/f${s}`, randomBytes(s)]))
  for (const [p, d] of files) await writeWhole(v, p, d)
  for (const [p, d] of files) t.ok((await readAll(v, p)).equals(d), `${p} reads back before close`)
  await v.close()
  const again = await open(true)
  for (const [p, d] of files) {
    t.equal((await again.getattr(p)).size, d.length)
    t.ok((await readAll(again, p)).equals(d), `${p} reads back after reopen`)
  }
  await again.close()
})

t.test('random-offset writes match a reference buffer', async (t) => {
  const { open } = await newVolume()
  const v = await open()
  const ref = Buffer.alloc(0)
  let model = ref
  const fh = await v.create('/r', 0o644, 0, 0, O_RDWR)
  let seed = 42
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n)
  for (let i = 0; i < 300; i++) {
    const pos = rnd(6 * C)
    const len = 1 + rnd(i % 10 === 0 ? 2 * C : 5000)
    const data = randomBytes(len)
    await v.write(fh, data, len, pos)
    if (pos + len > model.length) model = Buffer.concat([model, Buffer.alloc(pos + len - model.length)])
    data.copy(model, pos)
    if (i % 37 === 0) await v.fsync(fh)
    if (i % 50 === 0) {
      const probe = Buffer.alloc(3000)
      const at = rnd(model.length)
      const n = await v.read(fh, probe, 3000, at)
      t.ok(probe.subarray(0, n).equals(model.subarray(at, at + n)), `read-your-writes at ${at}`)
    }
  }
  await v.release(fh)
  t.ok((await readAll(v, '/r')).equals(model), 'whole file equals the reference')
  await v.close()
  const ro = await open(true)
  t.ok((await readAll(ro, '/r')).equals(model), 'equal after reopen')
  await ro.close()
})

t.test('truncate down and up reads zeros past the old end', async (t) => {
  const { open } = await newVolume()
  const v = await open()
  const data = randomBytes(3 * C + 100)
  await writeWhole(v, '/t', data)
  await v.truncate('/t', C + 10)
  t.ok((await readAll(v, '/t')).equals(data.subarray(0, C + 10)), 'cut')
  await v.truncate('/t', 4 * C)
  const grown = await readAll(v, '/t')
  t.equal(grown.length, 4 * C)
  t.ok(grown.subarray(0, C + 10).equals(data.subarray(0, C + 10)), 'head kept')
  t.ok(grown.subarray(C + 10).equals(Buffer.alloc(4 * C - C - 10)), 'tail is zeros, old bytes do not come back')
  const fh = await v.open('/t', O_WRONLY | O_TRUNC)
  t.equal((await v.getattr('/t')).size, 0, 'O_TRUNC empties the file')
  await v.release(fh)
  await v.close()
  const ro = await open(true)
  t.equal((await ro.getattr('/t')).size, 0, 'size survives reopen')
  await ro.close()
})

t.test('a random read inside a truncated chunk opens the right blocks after reopening', async (t) => {
  const { open } = await newVolume()
  const v = await open()
  const data = randomBytes(64 * C)
  await writeWhole(v, '/t', data)
  const cut = 48 * C + 40_000
  await v.truncate('/t', cut)
  await v.close()
  const ro = await open(true)
  const fh = await ro.open('/t', O_RDONLY)
  const buf = Buffer.alloc(4000)
  // Far from the start: a random read, served by a Range request of single blocks.
  t.equal(await ro.read(fh, buf, 4000, cut - 3000), 3000)
  t.ok(buf.subarray(0, 3000).equals(data.subarray(cut - 3000, cut)), 'the bytes before the cut')
  await ro.release(fh)
  await ro.close()
})

t.test('partial overwrites racing with uploads under memory pressure lose nothing', async (t) => {
  const { store, keys } = await newVolume()
  const v = await Volume.open(store, keys, { readOnly: false, commitDelayMs: 5, syncClose: true, maxDirtyBytes: 2 * C, maxUploads: 2 })
  const model = randomBytes(8 * C)
  await writeWhole(v, '/a', model)
  await v.close()
  const w = await Volume.open(store, keys, { readOnly: false, commitDelayMs: 5, syncClose: true, maxDirtyBytes: 2 * C, maxUploads: 2, cacheBytes: 0 })
  const fa = await w.open('/a', O_RDWR)
  const fb = await w.create('/b', 0o644, 0, 0, O_WRONLY)
  let seed = 9
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n)
  const ops: Promise<unknown>[] = []
  for (let i = 0; i < 200; i++) {
    const pos = rnd(8 * C - 100)
    const bytes = randomBytes(1 + rnd(99))
    bytes.copy(model, pos)
    ops.push(w.write(fa, bytes, bytes.length, pos))
    ops.push(w.write(fb, randomBytes(C), C, i * C))
  }
  await Promise.all(ops)
  await w.flush(fa)
  await w.release(fa)
  await w.flush(fb)
  await w.release(fb)
  await w.close()
  const ro = await Volume.open(store, keys, { readOnly: true })
  t.ok((await readAll(ro, '/a')).equals(model), 'every overwrite is there after reopening')
  await ro.close()
})

t.test('small files keep their data in the metadata: no blob, one commit; they grow into blobs', async (t) => {
  const { store, open } = await newVolume()
  const v = await open()
  const blobsBefore = store.blobs.size
  const small = randomBytes(INLINE_MAX)
  await writeWhole(v, '/small', small)
  await writeWhole(v, '/tiny', Buffer.from('hi\n'))
  t.equal(store.blobs.size, blobsBefore, 'closing small files stored no blob (the data rode in the head)')
  // Patch the middle, cut it, grow one past the limit.
  const fh = await v.open('/small', O_RDWR)
  await v.write(fh, Buffer.from('XYZ'), 3, 100)
  small.write('XYZ', 100)
  await v.flush(fh)
  await v.release(fh)
  await v.truncate('/tiny', 2)
  const grown = Buffer.concat([randomBytes(INLINE_MAX), randomBytes(3 * C)])
  await writeWhole(v, '/grown', grown.subarray(0, 10))
  const fg = await v.open('/grown', O_WRONLY)
  await v.write(fg, grown.subarray(10), grown.length - 10, 10)
  await v.flush(fg)
  await v.release(fg)
  t.ok(store.blobs.size > blobsBefore, 'a file past the limit is stored in blobs')
  await v.close()
  const ro = await open(true)
  t.ok((await readAll(ro, '/small')).equals(small), 'patched in place')
  t.equal((await readAll(ro, '/tiny')).toString(), 'hi', 'cut')
  t.ok((await readAll(ro, '/grown')).equals(grown), 'grown into blobs, the inline start kept')
  const fr = await ro.open('/small', O_RDONLY)
  const piece = Buffer.alloc(50)
  t.equal(await ro.read(fr, piece, 50, 90), 50)
  t.ok(piece.equals(small.subarray(90, 140)), 'a read in the middle')
  await ro.release(fr)
  await ro.close()
})

t.test('a sparse file reads zeros in its holes', async (t) => {
  const { open } = await newVolume()
  const v = await open()
  const fh = await v.create('/s', 0o644, 0, 0, O_RDWR)
  await v.write(fh, Buffer.from('end'), 3, 10 * C)
  await v.flush(fh)
  await v.release(fh)
  const all = await readAll(v, '/s')
  t.equal(all.length, 10 * C + 3)
  t.ok(all.subarray(0, 10 * C).equals(Buffer.alloc(10 * C)))
  t.equal(all.subarray(10 * C).toString(), 'end')
  await v.close()
})

t.test('links, unlink while open, rename over a file', async (t) => {
  const { open } = await newVolume()
  const v = await open()
  await writeWhole(v, '/a', Buffer.from('alpha'))
  await v.link('/a', '/b')
  t.equal((await v.getattr('/b')).nlink, 2)
  t.equal((await readAll(v, '/b')).toString(), 'alpha')
  const fh = await v.open('/a', O_RDONLY)
  await v.unlink('/a')
  await v.unlink('/b')
  const buf = Buffer.alloc(5)
  t.equal(await v.read(fh, buf, 5, 0), 5, 'an unlinked open file still reads')
  t.equal(buf.toString(), 'alpha')
  await v.release(fh)
  t.equal(v.namespace.inodeCount, 1, 'only the root is left once the last handle closes')
  await writeWhole(v, '/x', Buffer.from('new'))
  await writeWhole(v, '/y', Buffer.from('old'))
  await v.rename('/x', '/y')
  t.equal((await readAll(v, '/y')).toString(), 'new')
  t.equal(await errorCodeOf(v.getattr('/x')), 'ENOENT')
  await v.close()
})

t.test('attributes survive reopening', async (t) => {
  const { open } = await newVolume()
  const v = await open()
  await v.mkdir('/d', 0o750, 1000, 1000)
  await writeWhole(v, '/d/f', Buffer.from('x'))
  await v.chmod('/d/f', 0o600)
  await v.chown('/d/f', 1234, 5678)
  await v.utimens('/d/f', Date.UTC(2001, 1, 3), Date.UTC(2002, 3, 4))
  await v.symlink('d/f', '/link', 0, 0)
  await v.close()
  const ro = await open(true)
  const a = await ro.getattr('/d/f')
  t.equal(a.mode & 0o7777, 0o600)
  t.equal(a.uid, 1234)
  t.equal(a.gid, 5678)
  t.equal(a.mtimeMs, Date.UTC(2002, 3, 4))
  t.equal(a.atimeMs, Date.UTC(2001, 1, 3))
  t.equal(await ro.readlink('/link'), 'd/f')
  t.equal((await ro.getattr('/d')).mode & 0o7777, 0o750)
  t.equal(await errorCodeOf(ro.mkdir('/z', 0o755, 0, 0)), 'EROFS')
  await ro.close()
})

t.test('a reader with a file open sees the size and contents the writer commits later', async (t) => {
  const { open } = await newVolume()
  const w = await open()
  const first = randomBytes(3 * C + 10)
  await writeWhole(w, '/grow', first)
  const r = await open(true, { followIntervalMs: 20 })
  const fh = await r.open('/grow', O_RDONLY)
  const more = Buffer.concat([first, randomBytes(2 * C)])
  await writeWhole(w, '/grow', more)
  await new Promise((res) => setTimeout(res, 200))
  t.equal((await r.getattr('/grow')).size, more.length, 'the new size, though the file stayed open')
  const buf = Buffer.alloc(more.length)
  t.equal(await r.read(fh, buf, buf.length, 0), more.length)
  t.ok(buf.equals(more), 'the new contents')
  await r.release(fh)
  await r.close()
  await w.close()
})

t.test('a random reader that lands near its last read is not taken for a stream; a stream is', async (t) => {
  const { store, open } = await newVolume({ chunkSize: 1 << 20 })
  const w = await open()
  const data = randomBytes(8 << 20)
  await writeWhole(w, '/r', data)
  await w.close()
  const r = await open(true)
  const fetched: number[] = []
  const getRange = store.getRange.bind(store)
  store.getRange = async <T>(id: string, range: ByteRange, check: (bytes: Buffer) => T) => (fetched.push(range.end - range.start), getRange(id, range, check))
  const fh = await r.open('/r', O_RDONLY)
  const buf = Buffer.alloc(4096)
  const readAt = async (at: number) => {
    t.equal(await r.read(fh, buf, buf.length, at), buf.length)
    t.ok(buf.equals(data.subarray(at, at + buf.length)), `the bytes at ${at}`)
  }
  for (const at of [5 << 20, (5 << 20) + 3 * 65536, (1 << 20) + 12345]) await readAt(at)
  t.ok(fetched.every((n) => n <= 65536 + 28), `random reads fetch single blocks, no whole chunks or read-ahead (${fetched.join(', ')} bytes)`)
  fetched.length = 0
  for (let at = 2 << 20; at < (2 << 20) + 4 * 131072; at += 131072) await readAt(at)
  t.ok(fetched.some((n) => n > 1 << 20), 'reads in a row load whole chunks')
  await r.release(fh)
  await r.close()
})
