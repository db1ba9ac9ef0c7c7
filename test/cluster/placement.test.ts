// Pure unit tests: rendezvous placement (spread and movement), back-off, failure classification,
// and the read order of the pool. No servers.
import t from 'tap'
import { createHash } from 'node:crypto'
import { place, rankIds, score } from '../../src/cluster/placement'
import { backoffDelay, retry } from '../../src/cluster/retry'
import { ServerError, TimeoutError, UnreachableError, classify } from '../../src/cluster/errors'
import { Member } from '../../src/cluster/member'
import { Pool } from '../../src/cluster/pool'
import { ReadCursor } from '../../src/cluster/reads'

const hex = (s: string) => createHash('sha256').update(s).digest('hex')
const serverIds = (n: number) => Array.from({ length: n }, (_, i) => hex(`server-${i}`).slice(0, 32))
const chunkIds = (n: number) => Array.from({ length: n }, (_, i) => hex(`chunk-${i}`))

t.test('score is the first 8 bytes of SHA-256(serverId|key), stable', async (t) => {
  const s = score('abc', 'key')
  t.equal(s, createHash('sha256').update('abc|key').digest().readBigUInt64BE(0))
  t.equal(score('abc', 'key'), s, 'deterministic')
  t.same(rankIds(['a', 'b', 'c'], 'k'), rankIds(['c', 'a', 'b'], 'k'), 'order of the input does not matter')
})

t.test('4 servers, R = 2: every server holds about the same share (within ±10 %) of 10,000 chunks', async (t) => {
  const servers = serverIds(4)
  const chunks = chunkIds(10_000)
  const count = new Map(servers.map((s) => [s, 0]))
  for (const c of chunks) {
    const home = place(servers, c, 2)
    if (new Set(home).size !== 2) t.fail(`chunk ${c} placed twice on one server`)
    for (const s of home) count.set(s, count.get(s)! + 1)
  }
  const expected = (10_000 * 2) / 4
  for (const [s, n] of count) t.ok(Math.abs(n - expected) <= expected * 0.1, `server ${s.slice(0, 8)} holds ${n} (expected ${expected} ±10 %)`)
})

t.test('adding a 5th server moves only the chunks that now rank it in their top R (about R/5)', async (t) => {
  for (const R of [1, 2, 3]) {
    const four = serverIds(4)
    const five = [...four, hex('server-new').slice(0, 32)]
    const chunks = chunkIds(10_000)
    let moved = 0
    let wrong = 0
    for (const c of chunks) {
      const before = place(four, c, R)
      const after = place(five, c, R)
      const changed = before.join() !== after.join()
      const ranksNew = after.includes(five[4]!)
      if (changed) moved++
      // A chunk changes placement only if the new server took one slot; the others stay put.
      if (changed !== ranksNew) wrong++
      if (ranksNew && after.filter((s) => s !== five[4]).some((s) => !before.includes(s))) wrong++
    }
    t.equal(wrong, 0, `R=${R}: only chunks that rank the new server among their top ${R} moved`)
    const share = moved / chunks.length
    t.ok(Math.abs(share - R / 5) <= 0.03, `R=${R}: ${(share * 100).toFixed(1)} % moved (expected ${(R / 5) * 100} % ±3)`)
  }
})

t.test('the seeds\' table is the special case: any one of 4 servers down, every chunk still has a copy (R=2)', async (t) => {
  const servers = serverIds(4)
  for (const c of chunkIds(2000)) {
    const home = place(servers, c, 2)
    for (const down of servers) if (!home.some((s) => s !== down)) t.fail(`chunk ${c} lost with ${down} down`)
  }
  t.pass('no chunk depends on a single server')
})

t.test('back-off grows, is jittered and capped', async (t) => {
  const p = { baseMs: 100, maxMs: 1000 }
  for (let a = 0; a < 10; a++) {
    const exp = Math.min(1000, 100 * 2 ** a)
    const d = backoffDelay(a, p)
    t.ok(d >= exp / 2 && d <= exp, `attempt ${a}: ${d} in [${exp / 2}, ${exp}]`)
  }
  t.ok(backoffDelay(1e9, p) <= 1000, 'huge attempt counts stay capped')
})

t.test('retry: stops on success, on a non-retryable error, and after the attempts', async (t) => {
  let calls = 0
  t.equal(await retry(async () => (++calls < 3 ? Promise.reject(new Error('x')) : 'ok'), { attempts: 5, baseMs: 1, maxMs: 2, retryable: () => true }), 'ok')
  t.equal(calls, 3)
  calls = 0
  await t.rejects(retry(async () => { calls++; throw new Error('fatal') }, { attempts: 5, baseMs: 1, maxMs: 2, retryable: () => false }), /fatal/)
  t.equal(calls, 1, 'non-retryable: one call')
  calls = 0
  await t.rejects(retry(async () => { calls++; throw new Error('again') }, { attempts: 3, baseMs: 1, maxMs: 2, retryable: () => true }), /again/)
  t.equal(calls, 3, 'bounded')
})

t.test('failure classification', async (t) => {
  t.equal(classify(new TimeoutError('http://x', 10)), 'down')
  t.equal(classify(new UnreachableError('http://x', Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }))), 'down')
  t.equal(classify(new ServerError(200, 'unknown', 'answer aborted', 'http://x')), 'down', 'torn transfer')
  t.equal(classify(new ServerError(500, 'internal', 'boom', 'http://x')), 'fault')
  t.equal(classify(new ServerError(503, 'unavailable', 'busy', 'http://x')), 'fault', '503 is load shedding, not death')
  t.equal(classify(new ServerError(409, 'version-conflict', 'moved on', 'http://x')), 'caller')
  t.equal(classify(new ServerError(413, 'payload-too-large', 'big', 'http://x')), 'caller')
})

t.test('read order: home servers first, then the rest in rank order, down ones last; cursor skips down', async (t) => {
  const log: string[] = []
  const members = serverIds(4).map(
    (id, i) => new Member({ url: `http://127.0.0.1:${40000 + i}`, user: 'u', password: 'p', timeoutMs: 1000, knownId: id, probe: { baseMs: 1e6, maxMs: 1e6 }, log: (l) => log.push(l) }),
  )
  t.teardown(() => members.forEach((m) => m.close()))
  for (const m of members) m.markUp({ id: m.knownId!, disk: m.knownId!, version: '0', freeBytes: 0, totalBytes: 0 })
  const pool = new Pool(members, { replicas: 2, writeQuorum: 1, timeoutMs: 1000, readConcurrency: 4, log: (l) => log.push(l) })
  const id = hex('some blob')
  const ranked = pool.rank(id)
  t.same(ranked.map((m) => m.id), rankIds(members.map((m) => m.id!), id), 'rank follows rendezvous over the ids')
  t.same(pool.readOrder(id), ranked, 'all up: read order = rank order')
  ranked[0]!.markDown('test')
  t.same(pool.readOrder(id), [ranked[1], ranked[2], ranked[3], ranked[0]], 'first home server down: it goes last')
  const cursor = new ReadCursor(pool.readOrder(id))
  t.equal(cursor.next(), ranked[1])
  ranked[2]!.markDown('test')
  t.equal(cursor.next(), ranked[3], 'a server that went down meanwhile is passed over')
  t.equal(cursor.next(), ranked[2], 'then the down ones, as a last resort, in the cursor\'s order')
  t.equal(cursor.next(), ranked[0])
  t.equal(cursor.next(), undefined)
  t.ok(log.some((l) => /marked down/.test(l)), 'going down is logged')
  t.equal(ranked[0]!.status().health, 0, 'a down member has health 0')
})
