// The head and the journal over an in-memory store: lost answers of a head write, record copies
// moved past a failing server, checkpoints, a corrupt journal blob, the head's inline tail, a
// writer that dies, and the head as the one source of R.
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { deriveVolumeKeys } from '../../src/crypto'
import { O_WRONLY } from '../../src/volume/fs-types'
import { ReplicatedRecord } from '../../src/volume/replicated-record'
import { Volume } from '../../src/volume/volume'
import { errorCodeOf, readAll, writeWhole } from './fixtures/file-io'
import { MemoryStore } from './fixtures/memory-store'
import { TEST_CHUNK as C, newVolume as newTestVolume } from './fixtures/new-volume'

const newVolume = () => newTestVolume({ volumeId: 'meta', openWith: { syncClose: true } })

t.test('a head write whose answers were lost is retried, not mistaken for another writer', async (t) => {
  const { store, open } = await newVolume()
  const v = await open(false, { commitDelayMs: 60_000 })
  const cas = store.casRecord.bind(store)
  let loseAnswers = false
  store.casRecord = async (...args: Parameters<MemoryStore['casRecord']>) => {
    const version = await cas(...args)
    if (loseAnswers) throw new Error('timeout: no answer (the server stored it)')
    return version
  }
  await v.mkdir('/kept', 0o755, 0, 0)
  loseAnswers = true
  await t.rejects(v.commit(), /timeout/, 'the commit fails as far as the writer knows')
  loseAnswers = false
  await v.commit()
  await v.close()
  const ro = await open(true)
  t.equal((await ro.getattr('/kept')).mode & 0o170000, 0o040000, 'the retried commit landed')
  await ro.close()
})

t.test('a record write that fails on one of its servers is made on the next live one', async (t) => {
  const store = new MemoryStore(2, 5)
  const record = new ReplicatedRecord<{ n: number }>(store, 'head', randomBytes(32), 3)
  const ranked = store.rank('head').map((m) => m.id!)
  store.failingRecordWrites.add(ranked[1]!)
  t.same((await record.write({ n: 1 }, () => true)).sort(), [ranked[0], ranked[2], ranked[3]].sort(), 'three copies: the failing server replaced by the 4th in rank')
  store.failingRecordWrites.add(ranked[3]!)
  store.failingRecordWrites.add(ranked[4]!)
  t.same((await record.write({ n: 2 }, () => true)).sort(), [ranked[0], ranked[2]].sort(), 'fewer copies only when no live server is left')
  store.failingRecordWrites.add(ranked[0]!).add(ranked[2]!)
  await t.rejects(record.write({ n: 3 }, () => true), /could not write record head on any server/)
  const copies = await record.readAll()
  t.same(copies.find((c) => c.server === ranked[0])?.value, { n: 2 }, 'the stored copies are unchanged by the failed write')
})

t.test('10,000 metadata changes: checkpoints bound the journal, load is fast', async (t) => {
  const { open, store } = await newVolume()
  const v = await open()
  for (let i = 0; i < 100; i++) {
    await v.mkdir(`/d${i}`, 0o755, 0, 0)
    for (let j = 0; j < 99; j++) {
      const fh = await v.create(`/d${i}/f${j}`, 0o644, 0, 0, O_WRONLY)
      await v.release(fh)
    }
    await v.commit()
  }
  for (let i = 0; i < 300; i++) {
    await v.chmod(`/d${i % 100}`, 0o700)
    await v.commit()
  }
  t.ok(v.head.journal.length < 256, `journal was cut by a checkpoint (${v.head.journal.length} blobs after it)`)
  await v.close()
  const started = Date.now()
  const ro = await open(true)
  const ms = Date.now() - started
  t.equal(ro.namespace.inodeCount, 1 + 100 + 100 * 99)
  t.ok(ms < 5000, `loaded 10,000 inodes in ${ms} ms`)
  await ro.close()
  t.ok(store.blobs.size > 0)
})

t.test('a corrupt journal blob: writers refuse with a clear error, readers fall back to an earlier commit', async (t) => {
  const { open, store } = await newVolume()
  const v = await open()
  // Enough entries to move the head's inline tail into a journal blob after each step.
  const bulk = async (tag: string) => {
    for (let i = 0; i < 200; i++) await v.mkdir(`/${tag}-${i}-${'x'.repeat(100)}`, 0o755, 0, 0)
    await v.commit()
  }
  const journal = () => [...(v as unknown as { log: { journalIds: string[] } }).log.journalIds]
  await writeWhole(v, '/before', Buffer.from('1'))
  await bulk('a')
  const first = journal()
  t.ok(first.length > 0 && v.head.journalBlobs === first.length, 'the commits went into journal blobs, chained from the head')
  await writeWhole(v, '/after', Buffer.from('2'))
  await bulk('b')
  await v.close()
  const newer = journal().filter((id) => !first.includes(id))
  t.ok(newer.length > 0)
  const blob = store.blobs.get(newer[0]!)!
  blob.data[blob.data.length - 5] ^= 0xff
  await t.rejects(open(), /corrupt or truncated/, 'read-write open refuses')
  const warnings: string[] = []
  const ro = await open(true, { log: (l: string) => warnings.push(l) })
  // The chain is walked from its newest blob: a broken one hides those before it, so a reader
  // shows the volume as of its checkpoint, an earlier commit, whole.
  t.equal(await errorCodeOf(ro.getattr('/after')), 'ENOENT', 'no change from past the bad blob')
  t.ok((await ro.readdir('/')).size >= 0, 'the tree as of an earlier commit is readable')
  t.match(warnings.join('\n'), /showing the volume as of the last readable commit/)
  await ro.close()
})

t.test('small commits ride inline in the head; readers apply them exactly once', async (t) => {
  const { open } = await newVolume()
  const w = await open()
  const r = await open(true, { followIntervalMs: 10 })
  const settle = () => new Promise((res) => setTimeout(res, 80))
  for (let i = 0; i < 300; i++) {
    await writeWhole(w, `/f${i}`, Buffer.from(`v${i}`))
    if (i % 3 === 0) await w.rename(`/f${i}`, `/g${i}`)
    if (i % 50 === 0) await settle()
  }
  // The tail moves into a blob every few commits: commit until the newest one is inline.
  let extra = 0
  do {
    await w.mkdir(`/last${extra++}`, 0o755, 0, 0)
    await w.commit()
  } while (!(w.head.tail ?? []).length && extra < 5)
  t.ok((w.head.journalBlobs ?? 0) > 0, `the tail overflowed into ${w.head.journalBlobs} journal blobs`)
  t.ok((w.head.tail ?? []).length > 0, 'the newest commits are still inline')
  await settle()
  await settle()
  t.equal(r.namespace.inodeCount, w.namespace.inodeCount, 'the reader followed every commit')
  t.equal((await readAll(r, '/g3')).toString(), 'v3')
  t.equal((await readAll(r, '/f299')).toString(), 'v299')
  await w.close()
  await r.close()
  const again = await open(true)
  t.equal(again.namespace.inodeCount, 1 + 300 + extra, 'a fresh load sees journal blobs and tail')
  await again.close()
})

t.test('a writer that dies leaves the volume readable at its last commit', async (t) => {
  const { open, store, keys } = await newVolume()
  const v = await Volume.open(store, keys, { readOnly: false, commitDelayMs: 60_000, syncClose: true })
  await writeWhole(v, '/kept', Buffer.from('fsynced'))
  const fh = await v.create('/lost', 0o644, 0, 0, O_WRONLY)
  await v.write(fh, Buffer.from('never flushed'), 13, 0)
  // No close: the process "dies" here. Its lease expires; a reader needs none.
  const ro = await open(true)
  t.equal((await readAll(ro, '/kept')).toString(), 'fsynced')
  t.equal(await errorCodeOf(ro.getattr('/lost')), 'ENOENT', 'an uncommitted create is not visible')
  await ro.close()
})

t.test('the head decides R: a store configured for another number of copies is refused, saying how to fix it', async (t) => {
  const store = new MemoryStore(2, 4)
  const keys = deriveVolumeKeys(randomBytes(32))
  await Volume.create(store, keys, { volumeId: 'r2', chunkSize: C, replicas: 2, uid: 0, gid: 0 })
  const three = Object.assign(Object.create(store) as MemoryStore, { replicas: 3 })
  for (const readOnly of [false, true]) {
    await t.rejects(Volume.open(three, keys, { readOnly }), /keeps 2 copies of each chunk, but this client is set to 3: set "replicas": 2 in the config/, readOnly ? 'read-only too' : 'for writing')
  }
  const v = await Volume.open(store, keys, { readOnly: false })
  t.pass('the refused writer gave the lease back: the right store opens at once')
  await v.close()
})
