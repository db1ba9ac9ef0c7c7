// The lease holder's background garbage collection over an in-memory store: overwritten chunks go
// after the grace period and a hold across passes; referenced chunks, chunks stored but not yet
// committed, and metadata blobs stay; the first pass only marks.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { deriveVolumeKeys } from '../../src/crypto'
import { O_RDONLY, O_WRONLY, O_TRUNC } from '../../src/volume/fs-types'
import { Volume } from '../../src/volume/volume'
import { MemoryStore } from './fixtures/memory-store'

const C = 64 * 1024
const GRACE = 1000
const HOLD = 2000

async function writeWhole(v: Volume, path: string, data: Buffer): Promise<void> {
  const fh = await v.create(path, 0o644, 0, 0, O_WRONLY | O_TRUNC)
  await v.write(fh, data, data.length, 0)
  await v.flush(fh)
  await v.release(fh)
}

async function readAll(v: Volume, path: string): Promise<Buffer> {
  const size = (await v.getattr(path)).size
  const fh = await v.open(path, O_RDONLY)
  const out = Buffer.alloc(size)
  for (let pos = 0; pos < size; ) pos += await v.read(fh, out.subarray(pos), Math.min(C, size - pos), pos)
  await v.release(fh)
  return out
}

t.test('overwritten chunks are collected in the background; live and uncommitted ones are kept', async (t) => {
  const store = new MemoryStore()
  const keys = deriveVolumeKeys(randomBytes(32))
  await Volume.create(store, keys, { volumeId: 'gc', chunkSize: C, replicas: 2, uid: 0, gid: 0 })
  const v = await Volume.open(store, keys, { readOnly: false, commitDelayMs: 60_000, backgroundGc: { intervalMs: 3_600_000, graceMs: GRACE, holdMs: HOLD } })
  const first = randomBytes(3 * C)
  await writeWhole(v, '/a', first)
  await v.sync()
  const afterFirst = store.blobs.size
  const second = randomBytes(3 * C)
  await writeWhole(v, '/a', second)
  await v.sync()
  t.equal(store.blobs.size, afterFirst + 3, 'the overwrite stored 3 new chunks (the commit rides in the head)')
  // Stored but not committed: a third version, uploaded at close, its commit not yet made.
  const third = randomBytes(2 * C)
  await writeWhole(v, '/b', third)
  await new Promise((r) => setTimeout(r, 20)) // its uploads finish
  const t0 = Date.now()
  await v.gc!.pass(t0 + GRACE + 10)
  t.equal(v.gc!.last!.removedCopies, 0, 'the first pass only marks what it finds unreferenced')
  t.ok(v.gc!.last!.young.blobs >= 3, 'the overwritten chunks are held')
  await v.gc!.pass(t0 + GRACE + HOLD + 20)
  t.equal(v.gc!.last!.garbage.blobs, 3, 'the second pass, past the hold, deletes the 3 overwritten chunks')
  t.equal(v.gc!.last!.removedCopies, 3)
  t.equal(store.blobs.size, afterFirst + 2, 'what is left: the live chunks and the uncommitted file\'s')
  t.same(await readAll(v, '/a'), second, 'the live file reads back')
  await v.sync()
  t.same(await readAll(v, '/b'), third, 'the file that was not yet committed during the passes is whole')
  await v.close()
  const again = await Volume.open(store, keys, { readOnly: true })
  t.same(await readAll(again, '/a'), second, 'after a reload from the servers')
  t.same(await readAll(again, '/b'), third)
  await again.close()
})
