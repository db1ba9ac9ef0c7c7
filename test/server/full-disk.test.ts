// A server out of disk space says so (507 before the body is read) and stays up; the client puts the
// blob on the next server instead, never takes "full" for "down", and reports a full cluster as such.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import path from 'node:path'
import { Cluster, ServerError, WriteFailedError } from '../../src/cluster'
import { ServerClient } from '../../src/cluster/server-client'
import { TEST_USER, startServer } from '../helpers/servers'
import { smallDisk } from '../helpers/small-disk'

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const MiB = 1024 * 1024

function blob(size = 4 * MiB): { id: string; data: Buffer } {
  const data = randomBytes(size)
  return { id: sha(data), data }
}

t.test('one full server: 507 as an answer, records still fit, space comes back after a delete', async (t) => {
  const disk = await smallDisk(t, 24)
  const server = await startServer(t, { dataDir: path.join(disk, 'data') })
  const client = new ServerClient({ url: server.url, user: TEST_USER.name, password: TEST_USER.password })
  t.teardown(() => client.close())
  const stored: string[] = []
  let refusal: unknown = null
  for (let i = 0; i < 10 && !refusal; i++) {
    const b = blob()
    try {
      await client.putBlob(b.id, b.data)
      stored.push(b.id)
    } catch (err) {
      refusal = err
    }
  }
  t.ok(stored.length >= 3, `${stored.length} blobs of 4 MiB fit on the 24 MiB disk`)
  t.ok(refusal instanceof ServerError, `the refusal is an answer, not a torn connection: ${String(refusal)}`)
  t.match(refusal, { status: 507, code: 'insufficient-storage' })
  const health = await client.health()
  t.ok(health.freeBytes < 5 * MiB, 'health reports the little space left')
  const version = await client.putRecord('head', 0, randomBytes(2000))
  t.equal(version, 1, 'a small record (a volume head) is still stored: blobs leave a reserve')
  t.ok(await client.deleteBlob(stored[0]!), 'a delete works on a full disk')
  const b = blob()
  t.equal(await client.putBlob(b.id, b.data), 'created', 'and the freed space takes a new blob at once')
})

t.test('cluster: a full home server is skipped, not marked down; a full cluster fails fast, as "full"', async (t) => {
  const disks = [await smallDisk(t, 12), await smallDisk(t, 12)]
  const small = await Promise.all(disks.map((d) => startServer(t, { dataDir: path.join(d, 'data') })))
  const roomy = await startServer(t)
  const logs: string[] = []
  const cluster = await Cluster.connect({
    servers: [...small, roomy].map((s) => s.url), user: TEST_USER.name, password: TEST_USER.password, replicas: 2, log: (l) => logs.push(l),
  })
  t.teardown(() => cluster.close())
  // Fill the small servers directly.
  for (const s of small) {
    const c = new ServerClient({ url: s.url, user: TEST_USER.name, password: TEST_USER.password })
    for (let i = 0; i < 5; i++) {
      const b = blob(2 * MiB)
      await c.putBlob(b.id, b.data).catch(() => undefined)
    }
    c.close()
  }
  const b = blob(4 * MiB)
  const put = await cluster.put(b.id, b.data)
  t.same(put.servers, [roomy.id], 'the only server with room holds the copy')
  t.ok(put.degraded, 'the write is degraded (one copy, not R)')
  t.ok(cluster.members().every((m) => m.up), 'no full server was marked down')
  t.notMatch(logs.join('\n'), /marked down/)

  await roomy.kill9()
  const c = blob(4 * MiB)
  const t0 = performance.now()
  const err = await cluster.put(c.id, c.data).catch((e: unknown) => e)
  t.ok(err instanceof WriteFailedError, 'with the roomy server gone, the put fails')
  t.ok((err as WriteFailedError).full, 'and says the cluster is full')
  t.ok(performance.now() - t0 < 5000, `within seconds (${Math.round(performance.now() - t0)} ms)`)
})
