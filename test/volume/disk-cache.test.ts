// The disk cache of sealed chunks under the chunk cache, on a real directory: it survives a
// "remount" (a new cache on the same directory), stays within its size, checks every entry like a
// server's copy (a flipped byte is dropped and fetched again), and a full disk or a vanished file
// is a miss, never an error.
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { sealChunk } from '../../src/crypto'
import { ChunkCache } from '../../src/volume/chunk-cache'
import { bytesOf } from './fixtures/chunk-text'
import type { BlobRef } from '../../src/volume/chunk-refs'
import { DiskCache, lastDiskCacheStats } from '../../src/volume/disk-cache'
import { smallDisk } from '../helpers/small-disk'
import { MemoryStore } from './fixtures/memory-store'

const key = randomBytes(32)
const fileId = randomBytes(16)

async function storeChunk(store: MemoryStore, index: number, plain: Buffer, salted = true): Promise<BlobRef> {
  const salt = salted ? randomBytes(8) : undefined
  const sealed = sealChunk(key, fileId, index, plain, salt)
  const id = createHash('sha256').update(sealed).digest('hex')
  await store.put(id, sealed)
  return salt ? { id, len: plain.length, salt: salt.toString('hex') } : { id, len: plain.length }
}

async function scratch(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'edfs-diskcache-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** Every entry file under the cache directory (not stats.json), with its size. */
async function entries(dir: string): Promise<{ file: string; size: number }[]> {
  const out: { file: string; size: number }[] = []
  for (const sub of await readdir(dir)) {
    if (sub === 'stats.json') continue
    for (const name of await readdir(path.join(dir, sub))) {
      const file = path.join(dir, sub, name)
      out.push({ file, size: (await stat(file)).size })
    }
  }
  return out
}

/** A cache over `store` with a disk cache in `dir`, as a mount would open it. */
async function open(store: MemoryStore, dir: string, maxBytes = 64 * 1024 * 1024, log?: (l: string) => void) {
  const disk = await DiskCache.open(dir, maxBytes, log)
  await disk.ready
  return { disk, cache: new ChunkCache(store, key, 64 * 1024 * 1024, disk) }
}

t.test('a chunk read once is read from the disk after a remount; a flipped byte is caught and fetched again', async (t) => {
  const dir = await scratch(t)
  const store = new MemoryStore()
  const salted = randomBytes(300_000)
  const plain = randomBytes(200_000)
  const refs = [await storeChunk(store, 0, salted), await storeChunk(store, 1, plain, false)]
  const first = await open(store, dir)
  t.ok(bytesOf(await first.cache.chunk(fileId, 0, refs[0]!)).equals(salted))
  t.ok(bytesOf(await first.cache.chunk(fileId, 1, refs[1]!)).equals(plain))
  t.equal(store.gets, 2)
  await first.disk.close()
  t.equal((await entries(dir)).length, 2, 'both sealed chunks are on disk')
  for (const e of await entries(dir)) t.notOk((await readFile(e.file)).includes(salted.subarray(0, 64)), 'ciphertext only')

  const second = await open(store, dir)
  t.ok(bytesOf(await second.cache.chunk(fileId, 0, refs[0]!)).equals(salted), 'salted chunk from disk')
  t.ok(bytesOf(await second.cache.chunk(fileId, 1, refs[1]!)).equals(plain), 'unsalted chunk from disk (hash-checked)')
  t.equal(store.gets, 2, 'no store read after the remount')
  t.match(second.disk.stats(), { hits: 2, misses: 0, corrupt: 0 })
  await second.disk.close()

  // Flip one byte in each entry: both reads still return the right bytes, from the store.
  for (const e of await entries(dir)) {
    const b = await readFile(e.file)
    b[1000] ^= 0x40
    await writeFile(e.file, b)
  }
  const third = await open(store, dir)
  t.ok(bytesOf(await third.cache.chunk(fileId, 0, refs[0]!)).equals(salted), 'a flipped salted entry fails its AEAD and is refetched')
  t.ok(bytesOf(await third.cache.chunk(fileId, 1, refs[1]!)).equals(plain), 'a flipped unsalted entry fails its hash and is refetched')
  t.equal(store.gets, 4)
  t.match(third.disk.stats(), { hits: 0, misses: 2, corrupt: 2 })
  await third.disk.close()
  t.match(await lastDiskCacheStats(dir), { corrupt: 2, files: 2 }, 'the counters are left for edfs status')

  const fourth = await open(store, dir)
  t.ok(bytesOf(await fourth.cache.chunk(fileId, 0, refs[0]!)).equals(salted))
  t.equal(store.gets, 4, 'the refetched copy replaced the bad entry')
  await fourth.disk.close()
})

t.test('block reads (random I/O) and their entries', async (t) => {
  const dir = await scratch(t)
  const store = new MemoryStore()
  const plain = randomBytes(1_000_000)
  const ref = await storeChunk(store, 7, plain)
  const a = await open(store, dir)
  t.ok((await a.cache.range(fileId, 7, ref, 200_000, 204_096)).equals(plain.subarray(200_000, 204_096)))
  await a.disk.close()
  const [only] = await entries(dir)
  t.match(path.basename(only!.file), /^[0-9a-f]{64}\.\d+-\d+$/, 'one 64 KiB block, named by its byte range')
  t.ok(only!.size < 70_000)
  const b = await open(store, dir)
  const gets = store.gets
  t.ok((await b.cache.range(fileId, 7, ref, 200_100, 200_200)).equals(plain.subarray(200_100, 200_200)))
  t.equal(store.gets, gets, 'served from the disk')
  await b.disk.close()
})

t.test('a random read after a remount takes its blocks out of the whole chunk read before', async (t) => {
  const dir = await scratch(t)
  const store = new MemoryStore()
  const plains = [randomBytes(1_000_000), randomBytes(700_000)]
  const refs = [await storeChunk(store, 0, plains[0]!), await storeChunk(store, 1, plains[1]!, false)]
  const a = await open(store, dir)
  for (const [i, ref] of refs.entries()) await a.cache.chunk(fileId, i, ref)
  await a.disk.close()
  const b = await open(store, dir)
  const gets = store.gets
  for (const [i, ref] of refs.entries()) {
    t.ok((await b.cache.range(fileId, i, ref, 600_000, 604_096)).equals(plains[i]!.subarray(600_000, 604_096)), `chunk ${i}'s block`)
  }
  t.equal(store.gets, gets, 'no store read: the blocks came out of the whole entries')
  t.match(b.disk.stats(), { hits: 2, misses: 0 })
  await b.disk.close()
  t.equal((await entries(dir)).length, 2, 'and no block entries beside them')

  // A flipped byte inside the block read: caught by its AEAD, the whole entry dropped, the block fetched.
  for (const e of await entries(dir)) {
    const bytes = await readFile(e.file)
    bytes[600_000 + 9 * 28 + 100] ^= 1
    await writeFile(e.file, bytes)
  }
  const c = await open(store, dir)
  for (const [i, ref] of refs.entries()) t.ok((await c.cache.range(fileId, i, ref, 600_000, 604_096)).equals(plains[i]!.subarray(600_000, 604_096)))
  t.equal(store.gets, gets + 2)
  t.match(c.disk.stats(), { corrupt: 2 })
  await c.disk.close()
})

t.test('block reads from the disk go into recycled buffers, and every block still reads right', async (t) => {
  const dir = await scratch(t)
  const store = new MemoryStore()
  const plains = [randomBytes(1_000_000), randomBytes(900_000)]
  const refs = [await storeChunk(store, 0, plains[0]!), await storeChunk(store, 1, plains[1]!)]
  const a = await open(store, dir)
  for (const [i, ref] of refs.entries()) await a.cache.chunk(fileId, i, ref)
  await a.disk.close()
  const b = await open(store, dir)
  const gets = store.gets
  // Every block of both chunks once, out of order: each a pread of the whole entry's part.
  const reads = refs.flatMap((ref, i) => Array.from({ length: Math.ceil(plains[i]!.length / 65536) }, (_, k) => ({ i, ref, at: k * 65536 })))
  for (const { i, ref, at } of reads.sort((x, y) => ((x.at * 7919 + x.i) % 97) - ((y.at * 7919 + y.i) % 97))) {
    const end = Math.min(at + 4096, plains[i]!.length)
    t.ok((await b.cache.range(fileId, i, ref, at, end)).equals(plains[i]!.subarray(at, end)), `chunk ${i} at ${at}`)
  }
  t.equal(store.gets, gets, 'all of them from the disk')

  // The buffer a read returned serves the next read once it is given back; other buffers are ignored.
  const [key] = [...(b.disk as unknown as { index: Map<string, unknown> }).index.keys()]
  const first = (await b.disk.read(key!, { offset: 0, length: 1000 }))!
  b.disk.recycle(first)
  b.disk.recycle(Buffer.alloc(1000)) // not the cache's: not kept
  const second = (await b.disk.read(key!, { offset: 1000, length: 1000 }))!
  t.equal(second.buffer, first.buffer, 'the same memory')
  const third = (await b.disk.read(key!, { offset: 0, length: 1000 }))!
  t.not(third.buffer, second.buffer, 'a buffer not given back is never handed out twice')
  await b.disk.close()
})

t.test('the size bound holds, the most recently used entries stay, and a remount keeps that order', async (t) => {
  const dir = await scratch(t)
  const store = new MemoryStore()
  const chunks = await Promise.all(Array.from({ length: 10 }, async (_, i) => ({ plain: randomBytes(100_000), i })))
  const refs = await Promise.all(chunks.map((c) => storeChunk(store, c.i, c.plain)))
  const max = 350_000 // three sealed chunks, not four
  const a = await open(store, dir, max)
  for (const [i, ref] of refs.entries()) await a.cache.chunk(fileId, i, ref)
  await a.disk.close()
  const files = await entries(dir)
  t.equal(files.length, 3, 'three entries fit')
  t.ok(files.reduce((n, f) => n + f.size, 0) <= max, 'the bytes on disk are within the bound')
  t.same(files.map((f) => path.basename(f.file).slice(0, 64)).sort(), refs.slice(7).map((r) => r.id).sort(), 'the last three read')

  // After a remount, a hit makes an entry the newest: reading #7 then two new chunks evicts #8 and #9.
  await new Promise((r) => setTimeout(r, 20))
  const b = await open(store, dir, max)
  await b.cache.chunk(fileId, 7, refs[7]!)
  await new Promise((r) => setTimeout(r, 20)) // the touch of #7's mtime is in the background
  await b.disk.close()
  const c = await open(store, dir, max)
  await c.cache.chunk(fileId, 0, refs[0]!)
  await c.cache.chunk(fileId, 1, refs[1]!)
  await c.disk.close()
  t.same((await entries(dir)).map((f) => path.basename(f.file).slice(0, 64)).sort(), [refs[0]!.id, refs[1]!.id, refs[7]!.id].sort())

  // A smaller bound at the next mount trims the directory to it.
  const d = await open(store, dir, 150_000)
  await d.disk.close()
  t.equal((await entries(dir)).length, 1, 'a smaller --disk-cache-size trims what is there')
})

t.test('entries take their LRU place when queued, not when their write happens to finish', async (t) => {
  const dir = await scratch(t)
  const id = (b: Buffer) => createHash('sha256').update(b).digest('hex')
  const big = randomBytes(8 * 1024 * 1024)
  const [small, third] = [randomBytes(1024), randomBytes(1024)]
  const disk = await DiskCache.open(dir, big.length + small.length + 512)
  await disk.ready
  // Two writers: the small entry, queued second, is on disk long before the big one is.
  disk.write(id(big), big)
  disk.write(id(small), small)
  disk.write(id(third), third) // over the bound once all three are in: the one queued first goes
  await disk.close()
  const names = (await entries(dir)).map((e) => path.basename(e.file)).sort()
  t.same(names, [id(small), id(third)].sort(), 'the entry queued first is the one trimmed')
})

t.test('what is not an entry: torn writes are removed, other files left alone, a vanished file is a miss', async (t) => {
  const dir = await scratch(t)
  const store = new MemoryStore()
  const plain = randomBytes(100_000)
  const ref = await storeChunk(store, 0, plain)
  const a = await open(store, dir)
  await a.cache.chunk(fileId, 0, ref)
  await a.disk.close()
  const [entry] = await entries(dir)
  const sub = path.dirname(entry!.file)
  const name = path.basename(entry!.file)
  await writeFile(`${entry!.file}.tmp`, 'torn')
  await mkdir(path.join(dir, 'notes'))
  await writeFile(path.join(dir, 'notes', 'readme'), 'mine')
  const b = await open(store, dir)
  t.same(await readdir(sub), [name], 'the torn write is gone')
  t.equal(await readFile(path.join(dir, 'notes', 'readme'), 'utf8'), 'mine', 'a file that is not the cache\'s is kept')
  await rm(entry!.file)
  const gets = store.gets
  t.ok(bytesOf(await b.cache.chunk(fileId, 0, ref)).equals(plain), 'an entry deleted under the cache is a miss')
  t.equal(store.gets, gets + 1)
  await b.disk.close()
  await t.rejects(DiskCache.open(dir, 0), /positive number of bytes/)
})

t.test('a full disk degrades to fewer entries, never a failed read', async (t) => {
  const disk = await smallDisk(t, 1)
  const store = new MemoryStore()
  const logs: string[] = []
  const a = await open(store, disk, 100 * 1024 * 1024, (l) => logs.push(l))
  const plains = Array.from({ length: 6 }, () => randomBytes(300_000))
  const refs = await Promise.all(plains.map((p, i) => storeChunk(store, i, p)))
  for (const [i, ref] of refs.entries()) {
    t.ok(bytesOf(await a.cache.chunk(fileId, i, ref)).equals(plains[i]!), `chunk ${i} reads`)
    await new Promise((r) => setTimeout(r, 10))
  }
  await a.disk.close()
  t.ok(a.disk.stats().skipped >= 1, `entries skipped: ${a.disk.stats().skipped}`)
  t.ok(logs.some((l) => /disk is full/.test(l)), 'said once that the disk is full')
  t.ok((await entries(disk)).length >= 1, 'what fitted was kept')
})
