// Slices over an in-memory store: a small write into a stored chunk stores about its own bytes (not
// the chunk), reads overlay the slices, merges keep at most MAX_SLICES per chunk, compaction folds
// them into a whole chunk, and all of it matches a reference file across fsyncs, truncates, a
// lost cache and a reopen.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { ChunkRef, SlicedRef, isSlicedRef } from '../../src/volume/chunk-refs'
import { MAX_SLICES, planUpload } from '../../src/volume/file-data'
import { O_RDWR } from '../../src/volume/fs-types'
import { Namespace } from '../../src/volume/namespace'
import { Volume } from '../../src/volume/volume'
import { readAll, writeWhole } from './fixtures/file-io'
import { MemoryStore } from './fixtures/memory-store'
import { newVolume as newTestVolume } from './fixtures/new-volume'

const C = 256 * 1024

/** A seeded generator (xorshift32): the same writes on every run. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x / 2 ** 32
  }
}

const newVolume = () => newTestVolume({ volumeId: 'sl', chunkSize: C })

/** Bytes the store was asked to keep (blobs and records) from now on. */
function countUploads(store: MemoryStore): () => number {
  let bytes = 0
  const put = store.put.bind(store)
  const cas = store.casRecord.bind(store)
  store.put = async (id, data) => {
    bytes += data.length
    return put(id, data)
  }
  store.casRecord = async (server, name, v, value) => {
    bytes += value.length
    return cas(server, name, v, value)
  }
  return () => bytes
}

function chunksOf(v: Volume, path: string): Map<number, ChunkRef> {
  const ns = (v as unknown as { ns: Namespace }).ns
  return ns.resolve(path).chunks!
}

t.test('planUpload: whole for new or covered chunks, a slice over stored ones, merges past the bound, folds past half', async (t) => {
  const base = { id: 'b', len: C, salt: '00' }
  t.same(planUpload(null, [{ off: 10, len: 5 }], 15), { kind: 'whole' }, 'nothing under: whole')
  t.same(planUpload({ inline: Buffer.alloc(5), len: 5 }, [{ off: 1, len: 1 }], 5), { kind: 'whole' }, 'inline under: whole')
  t.same(planUpload(base, [{ off: 0, len: C }], C), { kind: 'whole' }, 'a write covering the chunk: whole')
  t.match(planUpload(base, [{ off: 4096, len: 4096 }], C), { kind: 'slice', base, keep: [], merge: [] }, 'a small write: a slice')
  t.same(planUpload(base, [{ off: 0, len: C / 2 }], C), { kind: 'whole' }, 'half the chunk written: fold')
  const slice = (k: number) => ({ id: `s${k}`, salt: '01', blob: 10, parts: [[k * 100, 10, 0]] as [number, number, number][] })
  const full: SlicedRef = { len: C, base, slices: Array.from({ length: MAX_SLICES }, (_, k) => slice(k)) }
  const merged = planUpload(full, [{ off: 9000, len: 1 }], C)
  t.equal(merged.kind, 'slice')
  if (merged.kind === 'slice') {
    t.equal(merged.keep.length + merged.merge.length, MAX_SLICES, 'every slice either kept or merged')
    t.ok(merged.keep.length + 1 <= MAX_SLICES, 'the result stays within the bound')
    t.same(merged.merge.map((s) => s.id), full.slices.slice(merged.keep.length).map((s) => s.id), 'the newest are merged')
  }
})

t.test('random overwrites with fsync: match a reference, cost about their bytes, stay bounded in slices', async (t) => {
  const { store, open } = await newVolume()
  const v = await open()
  const size = 4 * C + 1000
  const reference = randomBytes(size)
  await writeWhole(v, '/db', reference)
  await v.sync()
  const uploaded = countUploads(store)
  const fh = await v.open('/db', O_RDWR)
  const rand = prng(42)
  let written = 0
  const writes = 300
  for (let k = 0; k < writes; k++) {
    const len = 1 + Math.floor(rand() * 4096)
    const at = Math.floor(rand() * (size - len))
    const bytes = randomBytes(len)
    await v.write(fh, bytes, len, at)
    bytes.copy(reference, at)
    written += len
    if (k % 3 === 2) await v.fsync(fh)
    if (k % 50 === 49) {
      const back = await readAll(v, '/db')
      if (!back.equals(reference)) t.fail(`after write ${k + 1}: the file differs from the reference`)
    }
  }
  await v.fsync(fh)
  await v.release(fh)
  const chunks = chunksOf(v, '/db')
  const counts = [...chunks.values()].map((r) => (isSlicedRef(r) ? r.slices.length : 0))
  t.ok(counts.some((n) => n > 0), `chunks are bases under slices (slices per chunk: ${counts.join(', ')})`)
  t.ok(counts.every((n) => n <= MAX_SLICES), `never more than ${MAX_SLICES} slices per chunk`)
  const amplification = uploaded() / written
  t.comment(`${written} bytes written in ${writes} writes, ${writes / 3} fsyncs: ${uploaded()} bytes uploaded (${amplification.toFixed(2)} per byte, data and metadata, one copy of each)`)
  // Whole-chunk rewrites would cost C (256 KiB) per fsync and chunk touched: ~80x here.
  t.ok(amplification < 8, `about the bytes written, not whole chunks: ${amplification.toFixed(2)} bytes uploaded per byte`)
  t.same(await readAll(v, '/db'), reference, 'the whole file matches')
  await v.close()

  const again = await open(true, { cacheBytes: 0 })
  t.same(await readAll(again, '/db'), reference, 'reopened, with no cache: the same bytes')
  const fh2 = await again.open('/db', 0)
  const rand2 = prng(7)
  for (let k = 0; k < 50; k++) {
    const len = 1 + Math.floor(rand2() * 9000)
    const at = Math.floor(rand2() * (size - len))
    const out = Buffer.alloc(len)
    await again.read(fh2, out, len, at)
    if (!out.equals(reference.subarray(at, at + len))) t.fail(`random read of ${len} at ${at} differs`)
  }
  await again.release(fh2)
  await again.close()
})

t.test('a truncate through slices, then an extension: the cut bytes read as zeros', async (t) => {
  const { open } = await newVolume()
  const v = await open()
  const reference = randomBytes(2 * C)
  await writeWhole(v, '/f', reference)
  await v.sync()
  const fh = await v.open('/f', O_RDWR)
  const patch = Buffer.alloc(1000, 7)
  await v.write(fh, patch, patch.length, C + 5000)
  patch.copy(reference, C + 5000)
  await v.fsync(fh)
  t.ok(isSlicedRef(chunksOf(v, '/f').get(1)!), 'chunk 1 is sliced')
  await v.ftruncate(fh, C + 5500)
  await v.ftruncate(fh, 2 * C)
  reference.fill(0, C + 5500)
  await v.fsync(fh)
  t.same(await readAll(v, '/f'), reference, 'the cut part of the slice and of the base read as zeros')
  // A write past the cut, into the sliced chunk, before and after a commit.
  const tail = Buffer.alloc(10, 9)
  await v.write(fh, tail, 10, C + 6000)
  tail.copy(reference, C + 6000)
  t.same(await readAll(v, '/f'), reference, 'buffered')
  await v.fsync(fh)
  await v.release(fh)
  t.same(await readAll(v, '/f'), reference, 'committed')
  await v.close()
  const again = await open(true, { cacheBytes: 0 })
  t.same(await readAll(again, '/f'), reference, 'reopened')
  await again.close()
})

t.test('many writes to one spot fold into a whole chunk at last, and the file stays right', async (t) => {
  const { open } = await newVolume()
  const v = await open()
  const reference = randomBytes(C)
  await writeWhole(v, '/hot', reference)
  await v.sync()
  const fh = await v.open('/hot', O_RDWR)
  const rand = prng(3)
  let sawSliced = false
  let sawWhole = false
  for (let k = 0; k < 120; k++) {
    const len = 2048
    const at = Math.floor(rand() * (C - len))
    const bytes = randomBytes(len)
    await v.write(fh, bytes, len, at)
    bytes.copy(reference, at)
    await v.fsync(fh)
    const ref = chunksOf(v, '/hot').get(0)!
    if (isSlicedRef(ref)) sawSliced = true
    else if (sawSliced) sawWhole = true
  }
  await v.release(fh)
  t.ok(sawSliced, 'small writes became slices')
  t.ok(sawWhole, 'and were folded into a whole chunk once they covered half of it')
  t.same(await readAll(v, '/hot'), reference)
  await v.close()
})
