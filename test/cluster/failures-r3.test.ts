// R = 3, 4 servers: every pair of servers killed with SIGKILL; data written before and while they
// are down comes back intact (small data: the matrix has 6 cases).
import t from 'tap'
import { startServers } from '../helpers/servers'
import { connect, intact, makeBlobs, putAll, restartAndWait } from './support'

t.test('R = 3, 4 servers: any two servers killed (all 6 pairs)', async (t) => {
  const servers = await startServers(t, 4)
  const cluster = await connect(servers, { replicas: 3, timeoutMs: 10_000 })
  t.teardown(() => cluster.close())
  const before = makeBlobs(24, 64 * 1024)
  const placed = await putAll(cluster, before)
  t.ok(placed.every((p) => p.servers.length === 3 && !p.degraded), 'written with all up: 3 copies each')
  for (let a = 0; a < 4; a++) {
    for (let b = a + 1; b < 4; b++) {
      await t.test(`servers ${a + 1} and ${b + 1} killed`, async (t) => {
        const pair = [servers[a]!, servers[b]!]
        await Promise.all(pair.map((s) => s.kill9()))
        intact(t, before, await cluster.getMany(before.map((x) => x.id)), 'data written before: getMany')
        const one = before[a * 4 + b]!
        t.ok((await cluster.get(one.id)).equals(one.data), 'get')
        const during = makeBlobs(8, 64 * 1024)
        const r = await putAll(cluster, during)
        t.ok(r.every((p) => p.servers.length === 2 && p.degraded), 'written with two down: 2 copies, degraded')
        intact(t, during, await cluster.getMany(during.map((x) => x.id)), 'data written with two down')
        await Promise.all(pair.map((s) => restartAndWait(cluster, s)))
        intact(t, during, await cluster.getMany(during.map((x) => x.id)), 'and after both came back')
      })
    }
  }
})
