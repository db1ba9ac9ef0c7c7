// A frozen volume of metadata format 2 (fixtures/format-2/volume.json, written by
// fixtures/make-volume-fixture.ts with the release of that format) must keep opening: read-only as
// it is, and read-write, where new writes go on top of its chunks and everything old still reads.
import t, { type Test } from 'tap'
import { O_RDWR, S_IFIFO, S_IFMT } from '../../src/volume/fs-types'
import { HEAD_VERSION } from '../../src/volume/metadata'
import { Volume } from '../../src/volume/volume'
import { readAll } from './fixtures/file-io'
import { FIXTURE_CHUNK as C, fixturePattern as pattern, loadVolumeFixture } from './fixtures/volume-fixture'

function bigFile(): Buffer {
  const big = pattern(3 * C + 1234, 1)
  Buffer.from('OVERWRITE').copy(big, C - 4)
  return big
}

async function checkContents(t: Test, v: Volume, big = bigFile()): Promise<void> {
  t.same(await readAll(v, '/docs/renamed.bin'), big, 'a multi-chunk file, renamed and overwritten across a chunk boundary')
  t.same(await readAll(v, '/docs/deep/hard.bin'), big, 'its hard link shows the same data')
  t.equal((await v.getattr('/docs/renamed.bin')).nlink, 2)
  t.equal((await readAll(v, '/docs/small.txt')).toString(), 'hello from format 2\n', 'an inline small file')
  t.match(await v.getattr('/docs/small.txt'), { mode: 0o100600, uid: 1000, gid: 1000, atimeMs: 1600000000123, mtimeMs: 1600000000456 }, 'mode, owner and times')
  t.equal((await v.getxattr('/docs/small.txt', 'user.color')).toString(), 'blue', 'an extended attribute')
  const sparse = await readAll(v, '/sparse.bin')
  t.equal(sparse.length, 5 * C + 10 + 1000)
  t.ok(sparse.subarray(0, 5 * C + 10).every((b) => b === 0), 'the holes read as zeros')
  t.same(sparse.subarray(5 * C + 10), pattern(1000, 2))
  t.same(await readAll(v, '/tail.bin'), pattern(2 * C + 3000, 3), 'a packed tail cut shorter than its sealed blob')
  for (let k = 0; k < 5; k++) t.same(await readAll(v, `/packed-${k}.bin`), pattern(10_000 + k, 10 + k), `small file ${k} in a pack`)
  t.equal((await v.getattr('/fifo')).mode & S_IFMT, S_IFIFO, 'a FIFO')
  t.equal(await v.readlink('/link'), 'docs/small.txt')
  t.equal((await readAll(v, '/after-checkpoint.txt')).toString(), 'journal entry after the checkpoint\n', 'a change from the journal after the checkpoint')
}

t.test('a format-2 volume opens read-only, unchanged', async (t) => {
  const { store, keys } = loadVolumeFixture(2)
  const before = JSON.stringify([...store.records])
  const v = await Volume.open(store, keys, { readOnly: true })
  t.equal(v.head.version, 2, 'the fixture is of format 2')
  await checkContents(t, v)
  await v.close()
  t.equal(JSON.stringify([...store.records]), before, 'a reader writes nothing')
})

t.test('a format-2 volume opened read-write: old chunks read, new writes land on top of them', async (t) => {
  const { store, keys } = loadVolumeFixture(2)
  const v = await Volume.open(store, keys, { readOnly: false, commitDelayMs: 5 })
  t.equal(v.head.version, HEAD_VERSION, `written as format ${HEAD_VERSION} from now on`)
  await checkContents(t, v)
  const big = bigFile()
  const fh = await v.open('/docs/renamed.bin', O_RDWR)
  for (const at of [10, C + 100, 2 * C + 7, 3 * C + 1000]) {
    const patch = Buffer.from(`new bytes at ${at}`)
    await v.write(fh, patch, patch.length, at)
    patch.copy(big, at)
  }
  await v.fsync(fh)
  await v.release(fh)
  await checkContents(t, v, big)
  await v.close()
  const again = await Volume.open(store, keys, { readOnly: true })
  await checkContents(t, again, big)
  await again.close()
})
