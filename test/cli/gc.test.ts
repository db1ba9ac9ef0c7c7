// gc frees overwritten and uncommitted chunks and nothing live: reads after gc are byte-identical,
// a second config still attaches; blobs younger than the grace period are kept; --dry-run deletes nothing.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { Cluster } from '../../src/cluster'
import { parseDuration } from '../../src/cli/commands/gc'
import { TEST_USER, blobIds, randomFile, sameTree, makeCliVolume, tmpDir } from './cli-helpers'

t.test('durations', async (t) => {
  t.equal(parseDuration('0'), 0)
  t.equal(parseDuration('90s'), 90_000)
  t.equal(parseDuration('1h'), 3_600_000)
  t.equal(parseDuration('2d'), 172_800_000)
  t.throws(() => parseDuration('soon'), /not a duration/)
})

t.test('gc frees overwritten and uncommitted chunks and nothing live', async (t) => {
  const v = await makeCliVolume(t, 4)
  const C = 256 * 1024
  const src = path.join(v.dir, 'src')
  await randomFile(path.join(src, 'keep', 'a'), 3 * C + 5)
  await randomFile(path.join(src, 'keep', 'b'), 10)
  await randomFile(path.join(src, 'over'), 4 * C)
  await v.ok(t, ['put', path.join(src, 'keep'), path.join(src, 'over'), '/'])
  // Overwrite: the 4 old chunks of /over are garbage now.
  await randomFile(path.join(src, 'over'), 2 * C)
  await v.ok(t, ['put', '--force', path.join(src, 'over'), '/over'])
  // Removed: the chunk of /gone is garbage (10,000 bytes: past the inline limit, so it has a blob).
  await randomFile(path.join(src, 'gone'), 10_000)
  await v.ok(t, ['put', path.join(src, 'gone'), '/gone'])
  await v.ok(t, ['rm', '/gone'])

  // Uncommitted: blobs a crashed writer uploaded but never recorded.
  const cluster = await Cluster.connect({ servers: v.servers.map((s) => s.url), user: TEST_USER.name, password: TEST_USER.password })
  t.teardown(() => cluster.close())
  const orphans: string[] = []
  for (let i = 0; i < 3; i++) {
    const data = randomBytes(5000)
    const id = createHash('sha256').update(data).digest('hex')
    await cluster.put(id, data)
    orphans.push(id)
  }
  const before = new Set((await Promise.all(v.servers.map((s) => blobIds(s)))).flat())

  const dry = await v.ok(t, ['gc', '--dry-run', '--grace', '0'])
  const would = Number(/would free: (\d+) blobs/.exec(dry.stdout)?.[1])
  t.ok(would >= 4 + 1 + 3, `dry run counts old chunks, the removed file and the orphans: ${would}\n${dry.stdout}`)
  t.same(new Set((await Promise.all(v.servers.map((s) => blobIds(s)))).flat()), before, '--dry-run deleted nothing')

  const young = await v.ok(t, ['gc'])
  t.match(young.stdout, /freed: 0 blobs/, 'the default grace period (1h) keeps everything this young')

  const r = await v.ok(t, ['gc', '--grace', '0'])
  t.comment(r.stdout)
  const freed = Number(/freed: (\d+) blobs/.exec(r.stdout)?.[1])
  t.equal(freed, would, 'frees what the dry run counted')
  const copies = Number(/freed: \d+ blobs \((\d+) copies/.exec(r.stdout)?.[1])
  t.equal(copies, Number(/would free: \d+ blobs \((\d+) copies/.exec(dry.stdout)?.[1]), 'every copy removed')
  const after = new Set((await Promise.all(v.servers.map((s) => blobIds(s)))).flat())
  for (const id of orphans) t.notOk(after.has(id), `orphan ${id.slice(0, 12)} is gone`)
  t.ok(after.size < before.size, `blobs: ${before.size} -> ${after.size}`)

  // Nothing live went away: every file reads back byte for byte, here and from a fresh attach.
  const out = path.join(v.dir, 'out')
  await v.ok(t, ['get', '/keep', out])
  t.ok(await sameTree(t, path.join(src, 'keep'), out))
  await v.ok(t, ['get', '/over', path.join(v.dir, 'over-out')])
  t.ok((await readFile(path.join(v.dir, 'over-out'))).equals(await readFile(path.join(src, 'over'))), 'the overwritten file has its new contents')
  const ls = await v.ok(t, ['ls', '-lR', '/'])
  t.notMatch(ls.stdout, /unreadable|degraded/, 'no file lost a chunk')
  const config2 = path.join(tmpDir(t), 'c2', 'config.json')
  const init2 = await v.run(['init', '--servers', v.servers.map((s) => s.url).join(','), '--user', TEST_USER.name], { config: config2 })
  t.equal(init2.code, 0, init2.stderr)
  const ls2 = await v.ok(t, ['ls', '-lR', '/'], { config: config2 })
  t.equal(ls2.stdout, ls.stdout, 'a fresh attach after gc sees the same volume')

  const again = await v.ok(t, ['gc', '--grace', '0'])
  t.match(again.stdout, /freed: 0 blobs/, 'a second gc finds nothing more')
})
