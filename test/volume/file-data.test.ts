// The file-data module on its own: back-pressure. Writers wait once the write buffers hold
// maxDirtyBytes (dirty and uploading), memory stays within the budget plus the chunk being filled,
// and every byte is stored once the servers take them again.
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { rootInodeId } from '../../src/crypto'
import { ChunkCache } from '../../src/volume/chunk-cache'
import { FileData, FileState } from '../../src/volume/file-data'
import { Namespace } from '../../src/volume/namespace'
import { MemoryStore } from './fixtures/memory-store'

const C = 64 * 1024

t.test('writers wait for memory while uploads are held; nothing is lost when they resume', async (t) => {
  const store = new MemoryStore()
  let open!: () => void
  const gate = new Promise<void>((resolve) => (open = resolve))
  const put = store.put.bind(store)
  store.put = async (...args: Parameters<MemoryStore['put']>) => (await gate, put(...args))
  const key = randomBytes(32)
  const data = new FileData(store, key, new ChunkCache(store, key, 16 * C), { chunkSize: C, maxDirtyBytes: 2 * C, maxUploads: 4, readAheadChunks: 0 })
  const ns = Namespace.empty(rootInodeId(randomBytes(32)), C, 0, 0)
  const f = new FileState(ns.add('/f', ns.makeInode('file', 0o644, 0, 0)))

  const contents = randomBytes(8 * C)
  let peak = 0
  let written = 0
  const writer = (async () => {
    for (let i = 0; i < 8; i++) {
      await data.write(f, contents.subarray(i * C, (i + 1) * C), i * C)
      written++
      peak = Math.max(peak, data.dirtyBytes)
    }
  })()
  await new Promise((r) => setTimeout(r, 100))
  t.ok(written >= 2 && written < 8, `the writer waits for memory while no upload can finish (${written} of 8 chunks written)`)
  t.ok(data.dirtyBytes <= 2 * C, `buffers held: ${data.dirtyBytes} bytes, the budget is ${2 * C}`)
  open()
  await writer
  t.ok(peak <= 3 * C, `at most the budget plus the chunk being filled (peak ${peak})`)
  const refs = await data.snapshot(f).refs
  t.equal(refs.size, 8, 'every chunk has a ref')
  t.equal(data.dirtyBytes, 0, 'the memory is given back')
  const back = Buffer.alloc(contents.length)
  t.equal(await data.read(f, back, back.length, 0, false), contents.length, 'a whole read')
  t.ok(back.equals(contents), 'the stored chunks read back as written')
})

t.test('readNow copies what is in memory at once, and leaves everything else to read()', async (t) => {
  const store = new MemoryStore()
  const key = randomBytes(32)
  const opts = { chunkSize: C, maxDirtyBytes: 8 * C, maxUploads: 4, readAheadChunks: 0 }
  const writer = new FileData(store, key, new ChunkCache(store, key, 16 * C), opts)
  const ns = Namespace.empty(rootInodeId(randomBytes(32)), C, 0, 0)
  const f = new FileState(ns.add('/f', ns.makeInode('file', 0o644, 0, 0)))
  const contents = randomBytes(3 * C - 100)
  await writer.write(f, contents, 0)
  await writer.snapshot(f).refs

  // Another reader's memory is empty: nothing to copy yet.
  const data = new FileData(store, key, new ChunkCache(store, key, 16 * C), opts)
  const buf = Buffer.alloc(C)
  t.equal(data.readNow(f, buf, C, 0, true), undefined, 'not in memory: read() must fetch')
  const gets = store.gets
  t.equal(await data.read(f, Buffer.alloc(2 * C), 2 * C, 0, true), 2 * C)
  t.equal(data.readNow(f, buf, C, C / 2, true), C, 'across two cached chunks')
  t.ok(buf.equals(contents.subarray(C / 2, C / 2 + C)), 'the bytes')
  const tail = Buffer.alloc(500)
  t.equal(data.readNow(f, tail, 500, 2 * C - 10, true), undefined, 'a chunk not in memory (the third) makes it wait')
  t.equal(await data.read(f, tail, 500, 2 * C + 10, false), 500)
  t.equal(data.readNow(f, tail, 500, 2 * C + 20, false), 500, 'a random read of a cached block')
  t.ok(tail.equals(contents.subarray(2 * C + 20, 2 * C + 520)))
  t.equal(data.readNow(f, tail, 500, contents.length - 10, false), 10, 'up to the end of the file')
  t.equal(data.readNow(f, tail, 500, contents.length, false), 0, 'at the end')
  t.ok(store.gets > gets, 'read() fetched')
  const fetched = store.gets
  data.readNow(f, buf, C, 0, true)
  t.equal(store.gets, fetched, 'readNow never fetches')

  // Written bytes not yet stored: read() overlays them, readNow does not try.
  await data.write(f, Buffer.from('new'), 5)
  t.equal(data.readNow(f, buf, C, 0, true), undefined, 'buffered writes make it wait')
  t.equal(await data.read(f, buf, 8, 0, true), 8)
  t.same(buf.subarray(5, 8), Buffer.from('new'))
})
