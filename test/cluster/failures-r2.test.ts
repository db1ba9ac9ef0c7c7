// R = 2, 4 servers: each single server killed with SIGKILL before and during a 64 MiB write
// (16 × 4 MiB) and during the read; the data comes back intact.
import t from 'tap'
import { startServers } from '../helpers/servers'
import { MiB, connect, intact, makeBlobs, putAll, restartAndWait } from './support'

t.test('R = 2, 4 servers: any one server killed before or during a 64 MiB write and read', async (t) => {
  const servers = await startServers(t, 4)
  const logs: string[] = []
  const cluster = await connect(servers, { replicas: 2 }, logs)
  t.teardown(() => cluster.close())

  for (const [i, victim] of servers.entries()) {
    await t.test(`server ${i + 1} killed before the write`, async (t) => {
      await victim.kill9()
      const blobs = makeBlobs(16, 4 * MiB)
      const placed = await putAll(cluster, blobs)
      t.ok(placed.every((p) => p.servers.length === 2 && !p.servers.includes(victim.id)), 'every blob has 2 copies on live servers')
      const homed = blobs.map((b) => cluster.rank(b.id).slice(0, 2).some((m) => m.id === victim.id))
      t.ok(placed.every((p, k) => p.degraded || !homed[k]), 'every blob with the dead server among its home servers is degraded')
      // A live home server may still time out on a loaded machine; that write is rightly degraded,
      // and its warning must say so. Any other reason is a placement bug.
      const unexplained = blobs.filter((b, k) => placed[k]!.degraded && !homed[k] && !logs.some((l) => l.includes(b.id) && l.includes('timeout after')))
      t.same(unexplained.map((b) => b.id), [], 'a blob off the dead server is degraded only when a live home server timed out', { logs: unexplained.length ? logs.slice(-20) : undefined })
      intact(t, blobs, await cluster.getMany(blobs.map((b) => b.id)), 'getMany')
      for (const b of blobs.slice(0, 4)) if (!(await cluster.get(b.id)).equals(b.data)) t.fail('get differs')
      await restartAndWait(cluster, victim)
      intact(t, blobs, await cluster.getMany(blobs.map((b) => b.id)), 'getMany after its restart')
    })

    await t.test(`server ${i + 1} killed during the write, and again during the read`, async (t) => {
      const blobs = makeBlobs(16, 4 * MiB)
      let killed: Promise<void> | null = null
      const placed = await putAll(cluster, blobs, 4, (done) => {
        if (done === 5) killed = victim.kill9()
      })
      await killed
      t.ok(placed.every((p) => p.servers.length === 2), 'every write stored 2 copies')
      intact(t, blobs, await cluster.getMany(blobs.map((b) => b.id)), 'getMany with the server dead')
      await restartAndWait(cluster, victim)
      const loc = await cluster.locate(blobs.map((b) => b.id))
      t.ok(blobs.every((b) => loc.get(b.id)!.length >= 2), 'after its restart every blob has at least 2 copies')
      let n = 0
      let killedRead: Promise<void> | null = null
      const got = await cluster.getMany(blobs.map((b) => b.id), () => {
        if (++n === 4) killedRead = victim.kill9()
      })
      await killedRead
      intact(t, blobs, got, 'getMany with the server killed mid-read')
      await restartAndWait(cluster, victim)
    })
  }
})
