// A frozen volume of metadata format 1 (test/volume/fixtures/format-1/volume.json, written by the
// first release over the in-memory store) must keep opening: read-only as it is, and read-write,
// which upgrades it to the current format with the same contents and stable inode numbers.
import t, { type Test } from 'tap'
import { HEAD_VERSION, MetadataLog } from '../../src/volume/metadata'
import { Volume } from '../../src/volume/volume'
import { readAll } from './fixtures/file-io'
import { FIXTURE_CHUNK, fixturePattern, loadVolumeFixture } from './fixtures/volume-fixture'

const C = FIXTURE_CHUNK
const pattern = fixturePattern
const loadFixture = () => loadVolumeFixture(1)

async function checkContents(t: Test, v: Volume, added: string[] = []): Promise<void> {
  const big = pattern(3 * C + 1234, 1)
  Buffer.from('OVERWRITE').copy(big, C - 4)
  t.same(await readAll(v, '/docs/renamed.bin'), big, 'a multi-chunk file, renamed and overwritten across a chunk boundary')
  t.same(await readAll(v, '/docs/deep/hard.bin'), big, 'its hard link shows the same data')
  t.equal((await v.getattr('/docs/renamed.bin')).nlink, 2)
  t.equal((await readAll(v, '/docs/small.txt')).toString(), 'hello from format 1\n', 'an inline small file')
  const small = await v.getattr('/docs/small.txt')
  t.match(small, { mode: 0o100600, uid: 1000, gid: 1000, atimeMs: 1600000000123, mtimeMs: 1600000000456 }, 'mode, owner and times')
  const sparse = await readAll(v, '/sparse.bin')
  t.equal(sparse.length, 5 * C + 10 + 1000)
  t.ok(sparse.subarray(0, 5 * C + 10).every((b) => b === 0), 'the holes read as zeros')
  t.same(sparse.subarray(5 * C + 10), pattern(1000, 2))
  t.equal(await v.readlink('/link'), 'docs/small.txt')
  t.equal((await readAll(v, '/after-checkpoint.txt')).toString(), 'journal entry after the checkpoint\n', 'a change from the journal after the checkpoint')
  t.match((await v.getattr('/docs/deep')).mode, 0o40700)
  t.same([...(await v.readdir('/'))].map((e) => e.name).sort(), ['after-checkpoint.txt', 'docs', 'link', 'sparse.bin', ...added].sort())
}

async function inodeNumbers(v: Volume): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const p of ['/', '/docs', '/docs/renamed.bin', '/docs/deep/hard.bin', '/docs/small.txt', '/sparse.bin', '/link']) out[p] = (await v.getattr(p)).ino
  return out
}

t.test('a format-1 volume opens read-only, unchanged', async (t) => {
  const { store, keys } = loadFixture()
  const before = JSON.stringify([...store.records])
  const v = await Volume.open(store, keys, { readOnly: true })
  t.equal(v.head.version, 1, 'the fixture is of format 1')
  await checkContents(t, v)
  const nums = await inodeNumbers(v)
  t.equal(nums['/docs/renamed.bin'], nums['/docs/deep/hard.bin'], 'hard links share an inode number')
  t.equal(new Set(Object.values(nums)).size, Object.keys(nums).length - 1, 'every other inode has its own number')
  await v.close()
  t.equal(JSON.stringify([...store.records]), before, 'a reader writes nothing')
})

t.test('a format-1 volume opened read-write is upgraded, with the same contents and stable inode numbers', async (t) => {
  const { store, keys } = loadFixture()
  const reader = await Volume.open(store, keys, { readOnly: true })
  const readerNums = await inodeNumbers(reader)
  await reader.close()
  const v = await Volume.open(store, keys, { readOnly: false, commitDelayMs: 5 })
  t.equal(v.head.version, HEAD_VERSION, `upgraded to format ${HEAD_VERSION}`)
  const nums = await inodeNumbers(v)
  t.same(nums, readerNums, 'the writer numbers the inodes as a reader of the old format did')
  await checkContents(t, v)
  await v.mkdir('/new', 0o755, 0, 0)
  const fresh = (await v.getattr('/new')).ino
  t.notOk(Object.values(nums).includes(fresh), 'a new inode takes a number of its own')
  await v.close()
  const again = await Volume.open(store, keys, { readOnly: true })
  t.same(await inodeNumbers(again), nums, 'the numbers are kept by the next load')
  await checkContents(t, again, ['new'])
  await again.close()
})

t.test('a head of an unknown format version is refused with a clear error', async (t) => {
  const { store, keys } = loadFixture()
  const record = MetadataLog.headRecord(store, keys)
  const head = await MetadataLog.latest(record)
  await record.write({ ...head!, seq: head!.seq + 1, version: 99 }, () => true)
  await t.rejects(Volume.open(store, keys, { readOnly: true }), /metadata format version 99.*reads versions 1, 2, 3: upgrade edfs/)
  await record.write({ ...head!, seq: head!.seq + 2, format: 'something-else' as 'edfs-volume' }, () => true)
  await t.rejects(Volume.open(store, keys, { readOnly: true }), /unknown format "something-else"/)
})
