// A replicated record over the in-memory store: copies on the first live servers in rank order, a
// failed server replaced by the next, a stale writer refused unless it may replace what is there,
// and copies that do not open (tampered, another key) reported, never taken for values.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { RecordConflictError, ReplicatedRecord } from '../../src/volume/replicated-record'
import { MemoryStore } from './fixtures/memory-store'

const NAME = 'r-test'

function setup(copies = 2) {
  const store = new MemoryStore(2, 4)
  const key = randomBytes(32)
  const record = () => new ReplicatedRecord<{ n: number }>(store, NAME, key, copies)
  const rankIds = () => store.rank(NAME).map((m) => m.id!)
  return { store, key, record, rankIds }
}

t.test('copies go to the first servers in rank order; a failing one is replaced by the next', async (t) => {
  const { store, record, rankIds } = setup()
  const [a, b, c] = rankIds()
  t.same((await record().write({ n: 1 }, () => true)).sort(), [a, b].sort(), 'the first two in rank order')
  const copies = await record().readAll()
  t.same(copies.filter((x) => x.value).map((x) => [x.server, x.value!.n]).sort(), [[a, 1], [b, 1]].sort())
  store.failingRecordWrites.add(a!)
  const w = record()
  await w.readAll()
  t.same((await w.write({ n: 2 }, () => true)).sort(), [b, c].sort(), 'the failing server is replaced by the next in rank order')
  store.failingRecordWrites.clear()
  store.failingRecordWrites.add(a!).add(b!).add(c!).add(rankIds()[3]!)
  await t.rejects(w.write({ n: 3 }, () => true), /could not write record r-test on any server/)
})

t.test('a stale writer is refused unless it may replace the value now there', async (t) => {
  const { record } = setup()
  const first = record()
  await first.write({ n: 1 }, () => true)
  const second = record()
  await second.readAll()
  await second.write({ n: 2 }, () => true)
  await t.rejects(first.write({ n: 3 }, (current) => current === null), RecordConflictError, 'the value moved on and may not be replaced')
  t.same((await record().readAll()).filter((c) => c.value).map((c) => c.value!.n), [2, 2], 'the refused write spread nowhere')
  await first.write({ n: 4 }, (current) => (current?.n ?? 0) < 4)
  t.same((await record().readAll()).filter((c) => c.value).map((c) => c.value!.n), [4, 4], 'allowed to replace: it does')
})

t.test('a copy that does not open is reported and never replaced blindly', async (t) => {
  const { store, record, rankIds } = setup()
  await record().write({ n: 1 }, () => true)
  const [a] = rankIds()
  const held = store.records.get(a!)!.get(NAME)!
  held.value = randomBytes(held.value.length) // tampered on one server
  held.version++
  const copies = await record().readAll()
  const bad = copies.find((c) => c.server === a)!
  t.equal(bad.value, null)
  t.ok(bad.error, 'the tampered copy carries its error')
  const other = new ReplicatedRecord<{ n: number }>(store, NAME, randomBytes(32), 2)
  t.ok((await other.readAll()).filter((c) => c.version > 0).every((c) => c.error), 'under another key no copy opens')
  await t.rejects(
    (async () => {
      const fresh = record()
      await fresh.readAll()
      held.version++ // moved on again after this writer read it
      await fresh.write({ n: 2 }, () => true)
    })(),
    RecordConflictError,
    'a copy that moved on and does not open is not overwritten',
  )
})
