// File semantics of the volume over an in-memory store (close-to-open mode, syncClose; write-back is
// in write-back.test.ts): random writes against a reference,
// truncate, holes, links, reopen from the journal, lease, corrupt journal.
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { deriveVolumeKeys } from '../../src/crypto'
import { FsError, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY } from '../../src/volume/fs-types'
import { Lease } from '../../src/volume/lease'
import { INLINE_MAX } from '../../src/volume/namespace'
import { ReplicatedRecord } from '../../src/volume/replicated-record'
import { Volume } from '../../src/volume/volume'
import { readAll } from './fixtures/file-io'
import { MemoryStore } from './fixtures/memory-store'

const C = 64 * 1024 // small chunks: many chunk boundaries in little data

async function newVolume(opts: { chunkSize?: number } = {}) {
  const store = new MemoryStore()
  const keys = deriveVolumeKeys(randomBytes(32))
  await Volume.create(store, keys, { volumeId: 'v1', chunkSize: opts.chunkSize ?? C, replicas: 2, uid: 0, gid: 0 })
  const open = (readOnly = false, extra: object = {}) => Volume.open(store, keys, { readOnly, commitDelayMs: 5, syncClose: true, ...extra })
  return { store, keys, open }
}

async function writeFile(v: Volume, path: string, data: Buffer): Promise<void> {
  const fh = await v.create(path, 0o644, 0, 0, O_WRONLY)
  for (let pos = 0; pos < data.length; pos += 128 * 1024) await v.write(fh, data.subarray(pos, pos + 128 * 1024), Math.min(128 * 1024, data.length - pos), pos)
  await v.flush(fh)
  await v.release(fh)
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p
  } catch (err) {
    if (err instanceof FsError) return err.code
    throw err
  }
  return undefined
}

t.test('sizes around chunk boundaries round-trip, also after reopening', async (t) => {
  const { open } = await newVolume()
  const v = await open()
  const sizes = [0, 1, C - 1, C, C + 1, 3 * C + 17]
  const files = new Map(sizes.map((s) => [`/f${s}`, randomBytes(s)]))
  for (const [p, d] of files) await writeFile(v, p, d)
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
  await writeFile(v, '/t', data)
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
  await writeFile(v, '/t', data)
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
  await writeFile(v, '/a', model)
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
  await writeFile(v, '/small', small)
  await writeFile(v, '/tiny', Buffer.from('hi\n'))
  t.equal(store.blobs.size, blobsBefore, 'closing small files stored no blob (the data rode in the head)')
  // Patch the middle, cut it, grow one past the limit.
  const fh = await v.open('/small', O_RDWR)
  await v.write(fh, Buffer.from('XYZ'), 3, 100)
  small.write('XYZ', 100)
  await v.flush(fh)
  await v.release(fh)
  await v.truncate('/tiny', 2)
  const grown = Buffer.concat([randomBytes(INLINE_MAX), randomBytes(3 * C)])
  await writeFile(v, '/grown', grown.subarray(0, 10))
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
  await writeFile(v, '/a', Buffer.from('alpha'))
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
  await writeFile(v, '/x', Buffer.from('new'))
  await writeFile(v, '/y', Buffer.from('old'))
  await v.rename('/x', '/y')
  t.equal((await readAll(v, '/y')).toString(), 'new')
  t.equal(await codeOf(v.getattr('/x')), 'ENOENT')
  await v.close()
})

t.test('attributes survive reopening', async (t) => {
  const { open } = await newVolume()
  const v = await open()
  await v.mkdir('/d', 0o750, 1000, 1000)
  await writeFile(v, '/d/f', Buffer.from('x'))
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
  t.equal(await codeOf(ro.mkdir('/z', 0o755, 0, 0)), 'EROFS')
  await ro.close()
})

t.test('one writer at a time; a reader follows the writer', async (t) => {
  const { open } = await newVolume()
  const w = await open()
  await t.rejects(open(), /open for writing by .* since/, 'a second writer is refused, naming the holder')
  const r = await open(true, { followIntervalMs: 20 })
  await writeFile(w, '/new', Buffer.from('hello'))
  await new Promise((res) => setTimeout(res, 200))
  t.equal((await readAll(r, '/new')).toString(), 'hello', 'the reader sees the commit')
  await w.close()
  const w2 = await open()
  t.pass('after close, another writer gets the lease')
  await w2.close()
  await r.close()
})

t.test('a reader with a file open sees the size and contents the writer commits later', async (t) => {
  const { open } = await newVolume()
  const w = await open()
  const first = randomBytes(3 * C + 10)
  await writeFile(w, '/grow', first)
  const r = await open(true, { followIntervalMs: 20 })
  const fh = await r.open('/grow', O_RDONLY)
  const more = Buffer.concat([first, randomBytes(2 * C)])
  await writeFile(w, '/grow', more)
  await new Promise((res) => setTimeout(res, 200))
  t.equal((await r.getattr('/grow')).size, more.length, 'the new size, though the file stayed open')
  const buf = Buffer.alloc(more.length)
  t.equal(await r.read(fh, buf, buf.length, 0), more.length)
  t.ok(buf.equals(more), 'the new contents')
  await r.release(fh)
  await r.close()
  await w.close()
})

t.test('a lease left by a dead process of this host is taken over at once', async (t) => {
  const { open, store, keys } = await newVolume()
  const { spawn } = await import('node:child_process')
  const child = spawn(process.execPath, ['-e', ''])
  const deadPid = await new Promise<number>((res) => child.on('exit', () => res(child.pid!)))
  const record = Lease.record(store, keys)
  await record.readAll()
  const now = Date.now()
  const { hostname } = await import('node:os')
  await record.write({ holder: 'crashed daemon', host: hostname(), pid: deadPid, token: 'x', sinceMs: now, expiresMs: now + 60_000 }, () => true)
  const w = await open()
  t.pass('the writer took over the dead holder\'s lease')
  await w.close()
  await record.write({ holder: 'other host', host: 'elsewhere', pid: deadPid, token: 'y', sinceMs: now, expiresMs: Date.now() + 60_000 }, () => true)
  await t.rejects(open(), /open for writing by other host/, 'a live lease of another host is respected')

  // A daemon killed with -9 is a zombie until its parent reaps it: it holds nothing any more.
  const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] })
  t.teardown(() => void parent.kill('SIGKILL'))
  const zombie = Number(await new Promise<string>((res) => parent.stdout!.once('data', (d: Buffer) => res(d.toString()))))
  const { readFile } = await import('node:fs/promises')
  for (let i = 0; i < 100 && !/\) Z /.test(await readFile(`/proc/${zombie}/stat`, 'utf8').catch(() => '')); i++) await new Promise((r) => setTimeout(r, 20))
  t.match(await readFile(`/proc/${zombie}/stat`, 'utf8'), /\) Z /, `pid ${zombie} is a zombie`)
  await record.write({ holder: 'killed daemon', host: hostname(), pid: zombie, token: 'z', sinceMs: now, expiresMs: Date.now() + 60_000 }, () => true)
  const z = await open()
  t.pass('the writer took over the zombie holder\'s lease at once')
  await z.close()
})

t.test('a writer whose lease ran out renews it before committing, or stops if another took it', async (t) => {
  const { store, keys } = await newVolume()
  const ttl = 300
  const cutOff = (l: Lease) => (l.renew = async () => undefined) // renewals never arrive
  const first = await Lease.acquire(store, keys, 'first', ttl)
  cutOff(first)
  await new Promise((res) => setTimeout(res, ttl + 50))
  delete (first as { renew?: unknown }).renew
  await first.ensureValid(50)
  t.equal(first.lost, null, 'nobody took it: renewed, still the holder')
  t.ok(first.holder.expiresMs > Date.now(), 'with a new expiry')
  cutOff(first)
  await new Promise((res) => setTimeout(res, ttl + 50))
  const second = await Lease.acquire(store, keys, 'second', 60_000)
  delete (first as { renew?: unknown }).renew
  await first.ensureValid(50)
  t.match(first.lost?.message ?? '', /./, 'taken over meanwhile: the first writer knows it lost the lease')
  await second.release()
  await first.release()
})

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
  await writeFile(v, '/before', Buffer.from('1'))
  await bulk('a')
  const first = journal()
  t.ok(first.length > 0 && v.head.journalBlobs === first.length, 'the commits went into journal blobs, chained from the head')
  await writeFile(v, '/after', Buffer.from('2'))
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
  t.equal(await codeOf(ro.getattr('/after')), 'ENOENT', 'no change from past the bad blob')
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
    await writeFile(w, `/f${i}`, Buffer.from(`v${i}`))
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
  await writeFile(v, '/kept', Buffer.from('fsynced'))
  const fh = await v.create('/lost', 0o644, 0, 0, O_WRONLY)
  await v.write(fh, Buffer.from('never flushed'), 13, 0)
  // No close: the process "dies" here. Its lease expires; a reader needs none.
  const ro = await open(true)
  t.equal((await readAll(ro, '/kept')).toString(), 'fsynced')
  t.equal(await codeOf(ro.getattr('/lost')), 'ENOENT', 'an uncommitted create is not visible')
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
