// fsck finds chunks with missing copies, names the files of chunks that are gone, and --repair
// copies under-replicated chunks back onto their home servers.
import t from 'tap'
import { rm } from 'node:fs/promises'
import path from 'node:path'
import { Cluster } from '../../src/cluster'
import { TEST_USER, blobIds, randomFile, makeCliVolume } from '../cli/cli-helpers'

t.test('fsck reports, repairs, and names files whose chunks are gone', async (t) => {
  const v = await makeCliVolume(t, 4)
  const src = path.join(v.dir, 'src')
  await randomFile(path.join(src, 'big'), 5 * 256 * 1024)
  await randomFile(path.join(src, 'small'), 1000)
  await v.ok(t, ['put', path.join(src, 'big'), path.join(src, 'small'), '/'])
  const clean = await v.ok(t, ['fsck'])
  t.match(clean.stdout, / 0 under-replicated, 0 missing/, 'a fresh volume is healthy')

  // A server loses its disk: every copy it held is gone.
  const victim = v.servers[1]!
  const lost = await blobIds(victim)
  t.ok(lost.length > 0, `server 2 held ${lost.length} blobs`)
  await victim.stop()
  await rm(path.join(victim.dataDir, 'users', TEST_USER.name, 'blobs'), { recursive: true })
  await victim.restart()
  const hurt = await v.run(['fsck'])
  t.equal(hurt.code, 1, 'fsck exits 1 while copies are missing')
  t.match(hurt.stdout, new RegExp(` ${lost.length} under-replicated, 0 missing`), 'every blob of that server is counted')
  t.match(hurt.stderr, /run edfs fsck --repair/)

  const fixed = await v.ok(t, ['fsck', '--repair'])
  t.match(fixed.stdout, new RegExp(`repaired: ${lost.length}`))
  const after = await v.ok(t, ['fsck'])
  t.match(after.stdout, / 0 under-replicated, 0 missing/, 'healthy again after repair')
  t.same(new Set(await blobIds(victim)), new Set(lost), 'the lost copies are back on their home server')

  // Both copies of one chunk of /big gone: fsck names the file.
  const cluster = await Cluster.connect({ servers: v.servers.map((s) => s.url), user: TEST_USER.name, password: TEST_USER.password })
  t.teardown(() => cluster.close())
  const all = await Promise.all(v.servers.map((s) => blobIds(s)))
  const counts = new Map<string, number>()
  for (const ids of all) for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1)
  const ls = await v.ok(t, ['ls', '-l', '/'])
  t.match(ls.stdout, /big/)
  // The chunk blobs are the ones with exactly 2 copies and size >= 256 KiB; pick any one of /big's.
  const big = [...counts.keys()].filter((id) => counts.get(id) === 2)
  let gone: string | undefined
  for (const id of big) {
    const data = await cluster.get(id)
    if (data.length > 256 * 1024) {
      gone = id
      break
    }
  }
  t.ok(gone, 'found a chunk of /big')
  await cluster.delete(gone!)
  const broken = await v.run(['fsck'])
  t.equal(broken.code, 1)
  t.match(broken.stdout, new RegExp(`missing: ${gone} \\(/big\\)`), 'the missing chunk is named with its file')
})
