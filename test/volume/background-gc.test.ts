// The lease holder's background garbage collection over an in-memory store: overwritten chunks go
// after the grace period and a hold across passes; referenced chunks, chunks stored but not yet
// committed, and metadata blobs stay; the first pass only marks.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { readAll, writeWhole } from './fixtures/file-io'
import { newVolume } from './fixtures/new-volume'

const C = 64 * 1024
const GRACE = 1000
const HOLD = 2000

t.test('overwritten chunks are collected in the background; live and uncommitted ones are kept', async (t) => {
  const { store, open } = await newVolume({ volumeId: 'gc' })
  const v = await open(false, { commitDelayMs: 60_000, backgroundGc: { intervalMs: 3_600_000, graceMs: GRACE, holdMs: HOLD } })
  const ids = () => new Set(store.blobs.keys())
  const empty = ids()
  const first = randomBytes(3 * C)
  await writeWhole(v, '/a', first)
  await v.sync()
  const firstBlobs = [...ids()].filter((id) => !empty.has(id))
  t.ok(firstBlobs.length >= 1, `the first version is stored (${firstBlobs.length} blobs: small chunks share packs)`)
  const second = randomBytes(3 * C)
  await writeWhole(v, '/a', second)
  await v.sync()
  const secondBlobs = [...ids()].filter((id) => !empty.has(id) && !firstBlobs.includes(id))
  t.ok(secondBlobs.length >= 1, 'the overwrite stored new blobs (the commit rides in the head)')
  // Stored but not committed: a third version, uploaded at close, its commit not yet made.
  const third = randomBytes(2 * C)
  await writeWhole(v, '/b', third)
  await new Promise((r) => setTimeout(r, 300)) // its uploads finish (a pack waits up to 100 ms)
  const thirdBlobs = [...ids()].filter((id) => !empty.has(id) && !firstBlobs.includes(id) && !secondBlobs.includes(id))
  t.ok(thirdBlobs.length >= 1, 'the uncommitted file is stored')
  const t0 = Date.now()
  await v.gc!.pass(t0 + GRACE + 10)
  t.equal(v.gc!.last!.removedCopies, 0, 'the first pass only marks what it finds unreferenced')
  t.equal(v.gc!.last!.young.blobs, firstBlobs.length, 'the overwritten blobs are held')
  await v.gc!.pass(t0 + GRACE + HOLD + 20)
  t.equal(v.gc!.last!.garbage.blobs, firstBlobs.length, 'the second pass, past the hold, deletes the overwritten blobs')
  const left = ids()
  t.ok(firstBlobs.every((id) => !left.has(id)), 'all of them')
  t.ok([...secondBlobs, ...thirdBlobs, ...empty].every((id) => left.has(id)), 'the live, the uncommitted and the metadata blobs stay')
  t.same(await readAll(v, '/a'), second, 'the live file reads back')
  await v.sync()
  t.same(await readAll(v, '/b'), third, 'the file that was not yet committed during the passes is whole')
  await v.close()
  const again = await open(true)
  t.same(await readAll(again, '/a'), second, 'after a reload from the servers')
  t.same(await readAll(again, '/b'), third)
  await again.close()
})
