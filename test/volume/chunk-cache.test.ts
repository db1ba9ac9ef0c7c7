// The chunk cache on its own: a fetch in flight survives the cache filling up around it.
import { createHash, randomBytes } from 'node:crypto'
import t from 'tap'
import { sealChunk } from '../../src/crypto'
import { ChunkCache } from '../../src/volume/chunk-cache'
import { bytesOf } from './fixtures/chunk-text'
import { MemoryStore } from './fixtures/memory-store'

const key = randomBytes(32)
const fileId = randomBytes(16)

async function storeChunk(store: MemoryStore, index: number, plain: Buffer) {
  const sealed = sealChunk(key, fileId, index, plain)
  const id = createHash('sha256').update(sealed).digest('hex')
  await store.put(id, sealed)
  return { id, len: plain.length }
}

t.test('a chunk being fetched is delivered even if other chunks push it out meanwhile', async (t) => {
  const store = new MemoryStore()
  const plain = randomBytes(100_000)
  const ref = await storeChunk(store, 0, plain)
  // The fetch waits on the store: while it does, the cache fills with chunks just written.
  let release!: () => void
  const gate = new Promise<void>((resolve) => (release = resolve))
  const get = store.get.bind(store)
  store.get = async (id: string) => (await gate, get(id))
  const cache = new ChunkCache(store, key, 300_000)
  const pending = cache.chunk(fileId, 0, ref)
  for (let i = 1; i <= 5; i++) cache.put({ id: `written-${i}`, len: 100_000 }, randomBytes(100_000))
  release()
  t.ok(bytesOf(await pending).equals(plain), 'the reader gets its bytes, not an "evicted" error')
  t.ok(cache.bytes <= 300_000, 'the cache stays within its budget')
})

t.test('a random read of a chunk cut by truncate is served from its blob', async (t) => {
  const store = new MemoryStore()
  const plain = randomBytes(200_000)
  const full = await storeChunk(store, 3, plain)
  const cache = new ChunkCache(store, key, 1_000_000)
  // After truncate to 150,000 bytes, the ref keeps the blob's own length for block arithmetic.
  const cut = { id: full.id, len: 150_000, blob: 200_000 }
  t.ok((await cache.range(fileId, 3, cut, 140_000, 150_000)).equals(plain.subarray(140_000, 150_000)))
})

t.test('a range read of a chunk whose whole fetch is in flight waits for it instead of fetching blocks again', async (t) => {
  const store = new MemoryStore()
  const plain = randomBytes(300_000)
  const ref = await storeChunk(store, 2, plain)
  let release!: () => void
  const gate = new Promise<void>((resolve) => (release = resolve))
  const get = store.get.bind(store)
  store.get = async (id: string) => (await gate, get(id))
  const cache = new ChunkCache(store, key, 1_000_000)
  cache.prefetch(fileId, 2, ref)
  const part = cache.range(fileId, 2, ref, 100_000, 104_096)
  release()
  t.ok((await part).equals(plain.subarray(100_000, 104_096)))
  t.equal(store.gets, 1, 'one fetch of the chunk, no block fetch beside it')
})
