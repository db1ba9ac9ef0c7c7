// Verified copies on a real server: a copy that no longer hashes to its id is never served as
// good, is quarantined (counted, kept aside), is replaced by a PUT of the good bytes, and is found
// by the verify route and by an on-demand scrub. The background scrub walks the store by itself.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { readFile, readdir } from 'node:fs/promises'
import path from 'node:path'
import { ServerClient } from '../../src/cluster/server-client'
import { ScrubStatus } from '../../src/protocol'
import { flipBit } from '../helpers/corrupt'
import { RunningServer, TEST_USER, runEdfs, startServer, tmpDir } from '../helpers/servers'

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const quarantineDir = (s: RunningServer) => path.join(s.dataDir, 'users', TEST_USER.name, 'quarantine')

async function putRandom(c: ServerClient, n: number, size: number): Promise<{ id: string; data: Buffer }[]> {
  const out = []
  for (let i = 0; i < n; i++) {
    const data = randomBytes(size)
    const id = sha(data)
    await c.putBlob(id, data)
    out.push({ id, data })
  }
  return out
}

async function untilScrubbed(c: ServerClient, pred: (s: ScrubStatus) => boolean): Promise<ScrubStatus> {
  for (let i = 0; i < 600; i++) {
    const s = await c.scrubStatus()
    if (pred(s)) return s
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error('the scrub did not finish within 30 s')
}

t.test('verified copies', async (t) => {
  const server = await startServer(t)
  const client = new ServerClient({ url: server.url, user: TEST_USER.name, password: TEST_USER.password })
  t.teardown(() => client.close())

  await t.test('a rotten copy is not served: quarantined, answered as absent, counted', async (t) => {
    const [small, big] = [(await putRandom(client, 1, 100_000))[0]!, (await putRandom(client, 1, 12 * 1024 * 1024))[0]!]
    await flipBit(server, small.id, 5000)
    t.equal(await client.getBlob(small.id), null, 'a whole read of the rotten copy answers 404')
    t.equal(await client.headBlob(small.id), null, 'and the copy is gone from the store')
    await flipBit(server, big.id, 12 * 1024 * 1024 - 1)
    await t.rejects(client.getBlob(big.id), /short answer|aborted|socket hang up|ECONNRESET|other side closed/, 'a streamed read of a rotten large copy is torn before its end')
    t.equal(await client.headBlob(big.id), null, 'the large rotten copy is quarantined too')
    const names = await readdir(quarantineDir(server))
    t.same(names.map((n) => n.split('.')[0]).sort(), [small.id, big.id].sort(), 'both kept aside in quarantine/ for inspection')
    const stats = await client.stats()
    t.equal(stats.quarantined, 2, 'stats count them')
    t.equal((await client.health()).quarantined, 2, 'health counts them')
    t.equal(await client.putBlob(small.id, small.data), 'created', 'the good bytes can be stored again')
    t.same(await client.getBlob(small.id), small.data, 'and are served')
  })

  await t.test('a range read is served (the client checks it); a PUT of the good bytes replaces a rotten copy', async (t) => {
    const [b] = await putRandom(client, 1, 200_000)
    await flipBit(server, b!.id, 100)
    const range = await client.getBlob(b!.id, { start: 150_000, end: 150_100 })
    t.same(range, b!.data.subarray(150_000, 150_100), 'a range away from the damage is served')
    t.equal(await client.putBlob(b!.id, b!.data), 'created', 'the PUT does not answer "exists" for a copy that fails its hash')
    t.same(await client.getBlob(b!.id), b!.data, 'the good copy is back')
  })

  await t.test('verify names each id ok, bad (now quarantined) or missing', async (t) => {
    const blobs = await putRandom(client, 6, 50_000)
    await flipBit(server, blobs[1]!.id)
    await flipBit(server, blobs[4]!.id, 49_999)
    const absent = sha(randomBytes(10))
    const v = await client.verifyBlobs([...blobs.map((b) => b.id), absent])
    t.same(v.bad.sort(), [blobs[1]!.id, blobs[4]!.id].sort(), 'the two rotten copies are bad')
    t.same(v.ok.sort(), [0, 2, 3, 5].map((k) => blobs[k]!.id).sort(), 'the others are ok')
    t.same(v.missing, [absent], 'an unknown id is missing')
    const again = await client.verifyBlobs([blobs[1]!.id])
    t.same(again.missing, [blobs[1]!.id], 'a bad copy is gone once reported')
    await t.rejects(client.verifyBlobs(Array.from({ length: 257 }, () => absent)), { status: 400, code: 'bad-request' }, 'more than 256 ids: 400')
    await t.rejects(client.verifyBlobs(['../../etc/passwd']), { status: 400, code: 'invalid-id' }, 'a malformed id: 400')
  })

  await t.test('an on-demand scrub quarantines exactly the rotten copies', async (t) => {
    const before = (await client.stats()).quarantined!
    const blobs = await putRandom(client, 20, 30_000)
    const rotten = [3, 7, 11, 19].map((k) => blobs[k]!.id)
    for (const id of rotten) await flipBit(server, id, 17)
    const started = await client.scrub()
    t.ok(started.startedAt, 'a pass started')
    const done = await untilScrubbed(client, (s) => !s.running && s.finishedAt !== null)
    t.equal(done.bad, rotten.length, `the pass found exactly ${rotten.length} bad copies`)
    t.equal((await client.stats()).quarantined, before + rotten.length, 'and quarantined them')
    const v = await client.verifyBlobs(blobs.map((b) => b.id))
    t.same(v.missing.sort(), [...rotten].sort(), 'exactly the rotten ones are gone')
    t.equal(v.bad.length, 0, 'every copy left verifies')
  })
})

t.test('the background scrub finds a rotten copy by itself and remembers its pass', async (t) => {
  // A pass per ~1.7 s: the store here is tiny, so the pass is at the minimum rate and done at once.
  const server = await startServer(t, { args: ['--scrub-period', '0.00002'] })
  const client = new ServerClient({ url: server.url, user: TEST_USER.name, password: TEST_USER.password })
  t.teardown(() => client.close())
  const blobs = await putRandom(client, 5, 10_000)
  await flipBit(server, blobs[2]!.id)
  for (let i = 0; i < 200 && (await client.stats()).quarantined === 0; i++) await new Promise((r) => setTimeout(r, 50))
  t.equal((await client.stats()).quarantined, 1, 'the rotten copy was quarantined without any request')
  t.equal(await client.headBlob(blobs[2]!.id), null)
  let last: number | null = null
  for (let i = 0; i < 200 && !last; i++) {
    last = (await client.scrubStatus()).lastBackgroundPassFinishedAt
    if (!last) await new Promise((r) => setTimeout(r, 50))
  }
  t.ok(last, 'a finished pass is reported')
  await server.restart()
  const state = JSON.parse(await readFile(path.join(server.dataDir, 'scrub.json'), 'utf8'))
  t.ok(state.lastPassFinishedAt >= last!, 'the pass is remembered across a restart (DATA/scrub.json)')
})

t.test('bad --scrub-period is refused with a clear message', async (t) => {
  const r = await runEdfs(['server', '--data', tmpDir(t), '--port', '0', '--scrub-period', 'weekly'])
  t.equal(r.code, 1, 'exit 1, as for every usage error')
  t.match(r.stderr, /--scrub-period: days/)
})
