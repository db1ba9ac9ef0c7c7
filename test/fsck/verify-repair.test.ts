// fsck tells the truth: with known copies corrupted (one flipped bit) and deleted on known servers,
// its counts match what is on disk exactly; scrub quarantines exactly the rotten copies; --repair
// restores every copy from a good one, moves copies written while a home server was down to their
// home and trims the surplus, after which every server holds exactly the blobs rendezvous gives it
// and losing any one server leaves every file readable, byte for byte.
import t from 'tap'
import { unlink } from 'node:fs/promises'
import path from 'node:path'
import { Cluster, ServerClient } from '../../src/cluster'
import { RunningServer, TEST_USER, blobIds, randomFile, sameTree, makeCliVolume } from '../cli/cli-helpers'
import { blobFile, flipBit } from '../helpers/corrupt'

/** The numbers of one fsck summary line. */
function counts(stdout: string): { healthy: number; misplaced: number; under: number; missing: number; corrupt: number | null } {
  const m = /(\d+) healthy, (\d+) misplaced, (\d+) under-replicated, (\d+) missing/.exec(stdout)
  if (!m) throw new Error(`no fsck summary in: ${stdout}`)
  const c = /corrupt copies: (\d+)/.exec(stdout)
  return { healthy: Number(m[1]), misplaced: Number(m[2]), under: Number(m[3]), missing: Number(m[4]), corrupt: c ? Number(c[1]) : null }
}

t.test('fsck --verify and --repair against corruption, loss and misplacement', async (t) => {
  const v = await makeCliVolume(t, 4)
  const src = path.join(v.dir, 'src')
  for (let i = 0; i < 4; i++) await randomFile(path.join(src, `f${i}`), 5 * 256 * 1024 + 1000 * i)
  await randomFile(path.join(src, 'small'), 3000)
  await v.ok(t, ['put', src, '/src'])
  await v.ok(t, ['gc', '--grace', '0']) // only referenced blobs stay: the disk is what fsck checks
  const total = counts((await v.ok(t, ['fsck', '--verify'])).stdout)
  t.same({ ...total, healthy: 0 }, { healthy: 0, misplaced: 0, under: 0, missing: 0, corrupt: 0 }, 'a fresh volume: all healthy, nothing corrupt')
  const blobs = total.healthy

  const [a, b, c] = v.servers as [RunningServer, RunningServer, RunningServer]
  // Chunks only (2 copies; metadata has 3): opening the volume reads its metadata, and a server
  // quarantines a rotten copy it is asked for, so a rotten metadata copy could be found before fsck.
  const copies = new Map<string, number>()
  for (const s of v.servers) for (const id of await blobIds(s)) copies.set(id, (copies.get(id) ?? 0) + 1)
  const chunksOn = async (s: RunningServer) => (await blobIds(s)).filter((id) => copies.get(id) === 2)
  const onA = await chunksOn(a)
  const rotten = onA.slice(0, 5)
  const onB = (await chunksOn(b)).filter((id) => !rotten.includes(id))
  const deleted = onB.slice(0, 3)
  for (const id of rotten) await flipBit(a, id)
  for (const id of deleted) await unlink(blobFile(b, id))

  const presence = await v.run(['fsck'])
  t.equal(presence.code, 1, 'fsck exits 1 while copies are missing')
  t.same(counts(presence.stdout), { healthy: blobs - 3, misplaced: 0, under: 3, missing: 0, corrupt: null }, 'presence: exactly the 3 deleted copies')
  const verified = await v.run(['fsck', '--verify'])
  t.equal(verified.code, 1)
  t.same(counts(verified.stdout), { healthy: blobs - 8, misplaced: 0, under: 8, missing: 0, corrupt: 5 }, '--verify: the 5 rotten copies too')
  t.same((await blobIds(a)).filter((id) => rotten.includes(id)), [], 'the rotten copies are quarantined on their server')

  // Scrub (on demand) finds exactly the copies rotten on another server.
  const onC = (await chunksOn(c)).filter((id) => !rotten.includes(id) && !deleted.includes(id))
  const scrubbed = onC.slice(0, 4)
  for (const id of scrubbed) await flipBit(c, id)
  const client = new ServerClient({ url: c.url, user: TEST_USER.name, password: TEST_USER.password })
  t.teardown(() => client.close())
  await client.scrub()
  let status = await client.scrubStatus()
  // Bounded at 60 s: a loaded machine (CI runs two test files at once) took longer than 20 s.
  for (let i = 0; i < 1200 && status.running; i++) {
    await new Promise((r) => setTimeout(r, 50))
    status = await client.scrubStatus()
  }
  t.notOk(status.running, `the scrub finished (checked ${status.checked})`)
  t.equal(status.bad, 4, 'scrub quarantined exactly the 4 rotten copies')
  t.same(counts((await v.run(['fsck'])).stdout).under, 12, 'fsck now counts 12 blobs short of a copy')

  const repair = await v.ok(t, ['fsck', '--verify', '--repair'])
  t.match(repair.stdout, /repaired: 12 blobs \(12 copies written, 0 surplus copies removed\)/)
  t.same(counts((await v.ok(t, ['fsck', '--verify'])).stdout), { healthy: blobs, misplaced: 0, under: 0, missing: 0, corrupt: 0 }, 'after repair every copy verifies')

  for (const victim of v.servers) {
    await victim.kill9()
    const out = path.join(v.dir, `out-${victim.id}`)
    await v.ok(t, ['get', '/src', out, '--quiet'])
    t.ok(await sameTree(t, src, out), `server ${victim.id.slice(0, 8)} down: every file reads back identical`)
    await victim.restart()
  }

  // A server down during a write: its share goes to the next servers; --repair moves it home.
  const d = v.servers[3]!
  await d.kill9()
  await randomFile(path.join(v.dir, 'late', 'g'), 12 * 256 * 1024)
  await v.ok(t, ['put', path.join(v.dir, 'late'), '/late'])
  await d.restart()
  await v.ok(t, ['gc', '--grace', '0'])
  const off = counts((await v.ok(t, ['fsck'])).stdout)
  t.ok(off.misplaced > 0, `${off.misplaced} blobs written while a home server was down are misplaced`)
  t.equal(off.under + off.missing, 0, 'but none is short of copies')
  const moved = await v.ok(t, ['fsck', '--repair'])
  const m = /repaired: (\d+) blobs \((\d+) copies written, (\d+) surplus copies removed\)/.exec(moved.stdout)
  t.ok(m && Number(m[1]) === off.misplaced && Number(m[2]) === Number(m[3]), `each misplaced blob moved home: ${moved.stdout.trim()}`)
  t.equal(counts((await v.ok(t, ['fsck', '--verify'])).stdout).healthy, off.healthy + off.misplaced, 'all healthy after the move')

  // On disk: every blob exactly on its home servers (metadata blobs on 3, chunks on 2).
  const cluster = await Cluster.connect({ servers: v.servers.map((s) => s.url), user: TEST_USER.name, password: TEST_USER.password })
  t.teardown(() => cluster.close())
  const holders = new Map<string, string[]>()
  for (const s of v.servers) for (const id of await blobIds(s)) holders.set(id, [...(holders.get(id) ?? []), s.id])
  const wrong = [...holders].filter(([id, on]) => {
    const home = cluster.rank(id).slice(0, on.length).map((m) => m.id)
    return !(on.length === 2 || on.length === 3) || on.some((s) => !home.includes(s))
  })
  t.same(wrong, [], 'every copy on disk sits on a home server of its blob')
})
