// The cluster client against 4 real servers: round trips, bad input, connect errors, corruption,
// lost chunks, a hung server, traffic bounds, recovery of a restarted server, locate/delete/list,
// records with compare-and-swap.
import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile, rm, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import {
  BlobIdMismatchError, ChunkUnavailableError, Cluster, ClusterConnectError, MemberStatus, ServerError,
} from '../../src/cluster'
import { ServerClient } from '../../src/cluster/server-client'
import { RunningServer, TEST_USER, startServer, startServers } from '../helpers/servers'
import { MiB, blobPath, bytesServed, connect, makeBlobs, putAll, servedSince, sha, until } from './support'

t.test('cluster against 4 servers', async (t) => {
  const servers = await startServers(t, 4)
  const byId = (id: string | undefined): RunningServer => servers.find((s) => s.id === id)!
  const logs: string[] = []
  const cluster = await connect(servers, { replicas: 2 }, logs)
  t.teardown(() => cluster.close())

  await t.test('connect: every member up with its id; R = 2', async (t) => {
    t.equal(cluster.replicas, 2)
    t.same(cluster.members().map((m) => m.id).sort(), servers.map((s) => s.id).sort())
    t.ok(cluster.members().every((m) => m.up && m.health > 0))
  })

  await t.test('capacity: each disk once, however many servers share it', async (t) => {
    const clients = servers.map((s) => new ServerClient({ url: s.url, user: '', password: '' }))
    t.teardown(() => clients.forEach((c) => c.close()))
    const healths = await Promise.all(clients.map((c) => c.health()))
    const disks = new Map(healths.map((h) => [h.disk, h.totalBytes]))
    const devices = new Set(await Promise.all(servers.map(async (s) => (await stat(s.dataDir)).dev)))
    t.equal(disks.size, devices.size, 'one disk id per file system holding the data directories')
    t.equal((await cluster.capacity()).totalBytes, [...disks.values()].reduce((a, b) => a + b, 0))
  })

  await t.test('put stores on the two home servers in rank order; get returns the bytes', async (t) => {
    const [b] = makeBlobs(1, 1 * MiB)
    const r = await cluster.put(b!.id, b!.data)
    t.same(r.servers, cluster.rank(b!.id).slice(0, 2).map((m) => m.id), 'the top R of the rendezvous order')
    t.equal(r.degraded, false)
    t.same(await cluster.get(b!.id), b!.data)
    const again = await cluster.put(b!.id, b!.data)
    t.same(again.servers, r.servers, 'putting again is idempotent')
    const loc = await cluster.locate([b!.id])
    t.same(loc.get(b!.id), r.servers, 'locate finds exactly the two copies')
    const three = makeBlobs(1, 1000)[0]!
    t.equal((await cluster.put(three.id, three.data, 3)).servers.length, 3, 'copies = 3 stores three')
    t.equal((await cluster.locate([three.id])).get(three.id)!.length, 3, 'and not more')
  })

  await t.test('bad input', async (t) => {
    const [b] = makeBlobs(1, 1000)
    const wrong = sha(Buffer.from('something else'))
    await t.rejects(cluster.put(wrong, b!.data), BlobIdMismatchError, 'put with a wrong id is refused')
    await t.rejects(cluster.put(wrong, b!.data), new RegExp(`the servers refused blob ${wrong}: its bytes do not hash to its id`))
    t.same((await cluster.locate([wrong])).get(wrong), [], 'nothing was stored')
    await t.rejects(cluster.put('not-an-id', b!.data), /invalid blob id/)
    await t.rejects(cluster.get('../../etc/passwd'), /invalid blob id/)
    await t.rejects(cluster.put(b!.id, b!.data, 0), /copies must be a positive integer/)
    await t.rejects(cluster.getRange(b!.id, { start: 10, end: 5 }, (x) => x), /invalid byte range/)
    await cluster.put(b!.id, b!.data)
    const before = cluster.counters.corruptions
    await t.rejects(cluster.getRange(b!.id, { start: 0, end: 10 }, async (x) => Buffer.from(x)), /a check that finishes with the bytes before it returns/,
      'an async check is refused: the bytes it would read are reused once it returns')
    t.equal(cluster.counters.corruptions, before, 'and not taken for a corrupt copy')
  })

  await t.test('connect errors are clear', async (t) => {
    const wrong = Cluster.connect({ servers: servers.map((s) => s.url), user: TEST_USER.name, password: 'wrong password' })
    await t.rejects(wrong, ClusterConnectError)
    const err = (await wrong.catch((e: Error) => e)) as ClusterConnectError
    t.match(err.message, /login as "alice" refused \(wrong user name or password\?\)/)
    for (const s of servers) t.ok(err.message.includes(s.url), `names ${s.url}`)
    const nobody = Cluster.connect({ servers: ['http://127.0.0.1:1', 'http://127.0.0.1:9'], user: 'alice', password: 'x', timeoutMs: 2000 })
    const e2 = (await nobody.catch((e: Error) => e)) as ClusterConnectError
    t.type(e2, ClusterConnectError)
    t.match(e2.message, /no storage server answers \(2 configured\)/)
    t.match(e2.message, /http:\/\/127\.0\.0\.1:1: unreachable \(ECONNREFUSED\)/)
    t.match(e2.message, /http:\/\/127\.0\.0\.1:9: unreachable \(ECONNREFUSED\)/)
    await t.rejects(Cluster.connect({ servers: [servers[0]!.url], user: 'alice', password: 'x', replicas: 2 }), /replicas \(R\) must be 1\.\.1/)
    await t.rejects(Cluster.connect({ servers: [servers[0]!.url, servers[0]!.url], user: 'alice', password: 'x' }), /listed twice/)
  })

  await t.test('a member down at connect: placed by its known id, comes back by itself', async (t) => {
    const dead = 'http://127.0.0.1:1'
    const local: string[] = []
    const c = await Cluster.connect({
      servers: [...servers.slice(0, 3).map((s) => s.url), dead], user: TEST_USER.name, password: TEST_USER.password,
      knownIds: { [dead]: 'ffffffffffffffffffffffffffffffff' }, log: (l) => local.push(l),
    })
    t.teardown(() => c.close())
    const m = c.members().find((x) => x.url === dead)!
    t.equal(m.up, false)
    t.equal(m.id, 'ffffffffffffffffffffffffffffffff', 'the known id is used for placement')
    t.match(m.lastError, /ECONNREFUSED/)
    t.ok(local.some((l) => /127\.0\.0\.1:1 is down at connect/.test(l)), 'logged')
    // A blob whose home includes the dead member goes to the next server in rank order: degraded.
    for (const b of makeBlobs(20, 100)) {
      const r = await c.put(b.id, b.data)
      const homeHasDead = c.rank(b.id).slice(0, 2).some((x) => x.url === dead)
      t.equal(r.degraded, homeHasDead)
      t.equal(r.servers.length, 2, 'still two copies')
      t.same(await c.get(b.id), b.data)
    }
  })

  await t.test('another server at a dead member\'s address does not bring the member back', async (t) => {
    const first = await startServer(t)
    const local: string[] = []
    const c = await Cluster.connect({
      servers: [...servers.slice(0, 2).map((s) => s.url), first.url], user: TEST_USER.name, password: TEST_USER.password,
      replicas: 2, probeBackoffMs: { baseMs: 50, maxMs: 100 }, log: (l) => local.push(l),
    })
    t.teardown(() => c.close())
    await first.kill9()
    for (const b of makeBlobs(12, 100)) t.ok((await c.put(b.id, b.data)).servers.length === 2, 'stored twice')
    const member = (): MemberStatus => c.members().find((m) => m.url === first.url)!
    t.equal(member().up, false, 'the killed server is down')
    const port = new URL(first.url).port
    await startServer(t, { args: ['--port', port] })
    await until(() => local.some((l) => /now answers as server/.test(l)), 10_000, 'the probe to reach the newcomer')
    await new Promise((r) => setTimeout(r, 300))
    t.equal(member().up, false, 'still down')
    t.equal(member().id, first.id, 'under its own id')
    t.match(member().lastError, /answers as server [0-9a-f]+, not /)
    t.equal(local.filter((l) => /now answers as server/.test(l)).length, 1, 'warned once, not at every probe')
  })

  await t.test('probes and idle connections never keep a process alive', async (t) => {
    const mod = path.resolve(__dirname, '../../src/cluster')
    const script = `
      const { Cluster } = require(${JSON.stringify(mod)})
      Cluster.connect({ servers: ${JSON.stringify([servers[0]!.url, 'http://127.0.0.1:1'])}, user: 'alice', password: process.env.PW, probeBackoffMs: { baseMs: 50, maxMs: 100 } })
        .then(async (c) => { await c.readRecordEverywhere('x'); console.log('connected', c.members().filter((m) => !m.up).length) })`
    const t0 = Date.now()
    const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(process.execPath, ['-e', script], { env: { ...process.env, PW: TEST_USER.password }, stdio: ['ignore', 'pipe', 'inherit'] })
      let out = ''
      child.stdout.on('data', (d: Buffer) => (out += d.toString()))
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
      child.on('close', (code) => {
        clearTimeout(timer)
        resolve({ code, out })
      })
    })
    t.equal(r.code, 0, 'exited by itself, without close()')
    t.match(r.out, /connected 1/, 'with one member down and being probed')
    t.ok(Date.now() - t0 < 10_000, `within ${Date.now() - t0} ms`)
  })

  await t.test('a flipped byte in one replica: reads succeed, the copy is reported, re-checked and quarantined by its server', async (t) => {
    const [b] = makeBlobs(1, 256 * 1024)
    const { servers: holders } = await cluster.put(b!.id, b!.data)
    const first = byId(holders[0])
    const file = blobPath(first, b!.id)
    const bytes = await readFile(file)
    bytes[1000] ^= 0x40
    await writeFile(file, bytes)
    const before = cluster.counters.corruptions
    // A range cannot be checked by the server: the client's check finds the bad bytes.
    const range = await cluster.getRange(b!.id, { start: 900, end: 1100 }, (x) => {
      if (!x.equals(b!.data.subarray(900, 1100))) throw new Error('bad bytes')
      return Buffer.from(x) // a copy: the bytes are only lent to the check
    })
    t.same(range, b!.data.subarray(900, 1100), 'getRange: the check rejects the bad replica; the next one passes')
    t.equal(cluster.counters.corruptions, before + 1)
    t.match(cluster.corruptions.at(-1), { id: b!.id, server: first.id })
    t.ok(logs.some((l) => l.includes(`CORRUPT replica of blob ${b!.id} on server ${first.id}`)), 'logged')
    await until(() => !existsSync(file), 5000, 'the server to quarantine the reported copy')
    t.pass('the server re-checked the reported copy and moved it aside')
    t.same(await cluster.get(b!.id), b!.data, 'get: intact bytes from the other replica')
    t.same((await cluster.getMany([b!.id])).get(b!.id), b!.data, 'getMany: intact too')
  })

  await t.test('a whole read never receives a rotten copy: the server answers it as absent', async (t) => {
    const [b] = makeBlobs(1, 256 * 1024)
    const { servers: holders } = await cluster.put(b!.id, b!.data)
    const file = blobPath(byId(holders[0]), b!.id)
    const bytes = await readFile(file)
    bytes[7] ^= 0x02
    await writeFile(file, bytes)
    const before = cluster.counters.corruptions
    t.same(await cluster.get(b!.id), b!.data, 'get: intact bytes')
    t.equal(cluster.counters.corruptions, before, 'no corrupt bytes reached the client')
    t.notOk(existsSync(file), 'the serving server quarantined its copy')
  })

  await t.test('all replicas gone or corrupt: ChunkUnavailableError naming the chunk and the servers, never bytes', async (t) => {
    const [gone, bad] = makeBlobs(2, 64 * 1024)
    await cluster.put(gone!.id, gone!.data)
    for (const s of servers) await rm(blobPath(s, gone!.id), { force: true })
    const e = (await cluster.get(gone!.id).catch((x: Error) => x)) as ChunkUnavailableError
    t.type(e, ChunkUnavailableError)
    t.equal(e.id, gone!.id)
    t.equal(e.tried.length, 4, 'every server was asked')
    t.same(e.tried.map((x) => x.server).sort(), servers.map((s) => s.id).sort())
    t.ok(e.tried.every((x) => x.reason === 'not found'))
    t.match(e.message, new RegExp(`chunk ${gone!.id} is unavailable: .*not found`))
    const { servers: holders } = await cluster.put(bad!.id, bad!.data)
    for (const h of holders) {
      const file = blobPath(byId(h), bad!.id)
      const bytes = await readFile(file)
      bytes[5] ^= 1
      await writeFile(file, bytes)
    }
    const e2 = (await cluster.get(bad!.id).catch((x: Error) => x)) as ChunkUnavailableError
    t.type(e2, ChunkUnavailableError, 'both replicas corrupt: unavailable, not wrong bytes')
    t.ok(holders.every((h) => !existsSync(blobPath(byId(h), bad!.id))), 'both rotten copies are quarantined by their servers')
    const e3 = (await cluster.getMany([gone!.id, bad!.id]).catch((x: Error) => x)) as ChunkUnavailableError
    t.type(e3, ChunkUnavailableError, 'getMany rejects too')
    t.same([...e3.missing].sort(), [gone!.id, bad!.id].sort(), 'and lists every missing chunk')
  })

  await t.test('locate, delete, listAll', async (t) => {
    const blobs = makeBlobs(5, 1000)
    const placed = await putAll(cluster, blobs)
    const loc = await cluster.locate(blobs.map((b) => b.id))
    blobs.forEach((b, i) => t.same(loc.get(b.id), placed[i]!.servers))
    const listed = new Map<string, string[]>()
    for await (const e of cluster.listAll()) {
      if (!listed.has(e.id)) listed.set(e.id, [])
      listed.get(e.id)!.push(e.server)
      if (!(e.size > 0 && e.mtimeMs > 0)) t.fail(`bad entry ${JSON.stringify(e)}`)
    }
    for (const b of blobs) t.equal(listed.get(b.id)?.length, 2, 'listed on both servers')
    t.equal(await cluster.delete(blobs[0]!.id), 2, 'delete removes both copies')
    t.equal(await cluster.delete(blobs[0]!.id), 0, 'and then none')
    await t.rejects(cluster.get(blobs[0]!.id), ChunkUnavailableError)
  })

  await t.test('records: read everywhere, compare-and-swap, 409 carries the version', async (t) => {
    const name = `test-record-${Date.now()}`
    const empty = await cluster.readRecordEverywhere(name)
    t.equal(empty.length, 4)
    t.ok(empty.every((c) => c.version === 0 && c.value === null))
    const target = cluster.rank(name)[0]!.id!
    const v1 = await cluster.casRecord(target, name, 0, Buffer.from('one'))
    t.ok(v1 > 0)
    const e = (await cluster.casRecord(target, name, 0, Buffer.from('two')).catch((x: Error) => x)) as ServerError
    t.type(e, ServerError)
    t.equal(e.status, 409)
    t.equal(e.code, 'version-conflict')
    t.equal(e.body?.version, v1, 'the version the server holds')
    const v2 = await cluster.casRecord(servers.find((s) => s.id === target)!.url, name, v1, Buffer.from('two'))
    t.ok(v2 > v1, 'by URL too')
    const all = await cluster.readRecordEverywhere(name)
    t.same(all.find((c) => c.server === target)?.value, Buffer.from('two'))
    t.equal(all.filter((c) => c.value !== null).length, 1)
    await t.rejects(cluster.casRecord('nope', name, 0, Buffer.from('x')), /unknown server nope/)
  })

  await t.test('traffic: reading moves each blob once (all up, and with one server down)', async (t) => {
    const blobs = makeBlobs(12, 1 * MiB)
    await putAll(cluster, blobs)
    const total = blobs.reduce((n, b) => n + b.data.length, 0)
    let before = await bytesServed(servers)
    const got = await cluster.getMany(blobs.map((b) => b.id))
    for (const b of blobs) if (!got.get(b.id)?.equals(b.data)) t.fail(`blob ${b.id} differs`)
    let moved = servedSince(before, await bytesServed(servers))
    t.ok(moved <= total * 1.01, `all up, getMany: ${moved} bytes served for ${total} bytes of blobs`)
    before = await bytesServed(servers)
    for (const b of blobs) if (!(await cluster.get(b.id)).equals(b.data)) t.fail('differs')
    moved = servedSince(before, await bytesServed(servers))
    t.ok(moved <= total * 1.01, `all up, get one by one: ${moved} <= ${total} × 1.01`)

    // The victim is the first home of a blob read below, so a read reaches it for certain (a
    // server that is only ever second choice is never asked while the first answers).
    const victim = byId(cluster.rank(blobs[0]!.id)[0]!.id)
    await victim.kill9()
    t.teardown(async () => {
      if (!cluster.members().find((m) => m.id === victim.id)?.up) await victim.restart().catch(() => {})
    })
    const alive = servers.filter((s) => s !== victim)
    before = await bytesServed(alive)
    const got2 = await cluster.getMany(blobs.map((b) => b.id))
    for (const b of blobs) if (!got2.get(b.id)?.equals(b.data)) t.fail(`blob ${b.id} differs`)
    moved = servedSince(before, await bytesServed(alive))
    t.ok(moved <= total * 1.01, `one down, getMany: ${moved} <= ${total} × 1.01`)
    before = await bytesServed(alive)
    for (const b of blobs) if (!(await cluster.get(b.id)).equals(b.data)) t.fail('differs')
    moved = servedSince(before, await bytesServed(alive))
    t.ok(moved <= total * 1.01, `one down, get: ${moved} <= ${total} × 1.01`)
    t.equal(cluster.members().find((m) => m.id === victim.id)!.up, false, 'the dead server is marked down')

    await t.test('the pool recovers the restarted server without a client restart', async (t) => {
      await victim.restart()
      await until(() => cluster.members().find((m) => m.id === victim.id)!.up, 15_000, 'the restarted server to be up')
      t.pass('back up by itself (background probe)')
      const b = makeBlobs(40, 1000).find((x) => cluster.rank(x.id)[0]!.id === victim.id)!
      const r = await cluster.put(b.id, b.data)
      t.equal(r.degraded, false)
      t.equal(r.servers[0], victim.id, 'the restarted server takes its blobs again')
      const before = await bytesServed([victim])
      t.same(await cluster.get(b.id), b.data)
      t.equal(servedSince(before, await bytesServed([victim])), 1000, 'and serves them (session renewed after its restart)')
    })
  })

  await t.test('a hung server (SIGSTOP) delays a read by no more than the timeout', async (t) => {
    const c = await connect(servers, { replicas: 2, timeoutMs: 1000 })
    t.teardown(() => c.close())
    const blobs = makeBlobs(8, 256 * 1024)
    await putAll(c, blobs)
    const victim = byId(c.rank(blobs[0]!.id)[0]!.id)
    victim.pause()
    t.teardown(() => victim.resume())
    const t0 = Date.now()
    t.same(await c.get(blobs[0]!.id), blobs[0]!.data)
    const ms = Date.now() - t0
    t.ok(ms < 1000 + 600, `read took ${ms} ms (timeout 1000 ms)`)
    t.ok(ms >= 900, 'it did wait for the hung server first')
    t.equal(c.members().find((m) => m.id === victim.id)!.up, false, 'the hung server is marked down')
    const t1 = Date.now()
    const many = await c.getMany(blobs.map((b) => b.id))
    t.ok(blobs.every((b) => many.get(b.id)?.equals(b.data)), 'all blobs intact')
    t.ok(Date.now() - t1 < 1000, `later reads skip it (${Date.now() - t1} ms for ${blobs.length} blobs)`)
    victim.resume()
    await until(() => c.members().find((m) => m.id === victim.id)!.up, 15_000, 'the resumed server to be up')
    t.pass('resumed: back up')
  })
})
