// Every bad input gets a clear error: ids, names, routes, methods, sizes, hashes, stalls.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { readdirSync } from 'node:fs'
import path from 'node:path'
import { MAX_HAVE_IDS } from '../../src/protocol'
import { TEST_USER, startServer } from '../helpers/servers'
import { login, raw, signed } from './raw'

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')
const MiB = 1024 * 1024

t.test('bad inputs', async (t) => {
  const server = await startServer(t, { args: ['--max-blob-size', '1MiB', '--request-timeout', '700'] })
  const s = await login(server.url, TEST_USER.name, TEST_USER.password)
  const tmpFiles = () => readdirSync(path.join(server.dataDir, 'tmp'))
  const blobFiles = () => {
    const dir = path.join(server.dataDir, 'users', TEST_USER.name, 'blobs')
    try {
      return readdirSync(dir).flatMap((f) => readdirSync(path.join(dir, f)))
    } catch {
      return []
    }
  }

  await t.test('health needs no login and has the documented fields', async (t) => {
    const a = await raw(server.url, 'GET', '/v1/health')
    t.equal(a.status, 200)
    const h = a.json()
    t.equal(h.id, server.id)
    t.type(h.version, 'string')
    t.ok(h.freeBytes > 0 && h.totalBytes >= h.freeBytes)
  })

  await t.test('malformed blob ids and record names: 400 invalid-id', async (t) => {
    const good = sha('x')
    const badIds = ['../x', '..%2F..%2Fetc%2Fpasswd', good.toUpperCase(), good.slice(0, 63), `${good}0`, `${good.slice(0, 63)}g`, '.', '%00']
    for (const id of badIds) {
      for (const method of ['GET', 'DELETE']) {
        const a = await signed(s, method, `/v1/blobs/${id}`)
        t.equal(a.status, 400, `${method} ${id}`)
        t.equal(a.json().error, 'invalid-id')
      }
      const h = await signed(s, 'HEAD', `/v1/blobs/${id}`)
      t.equal(h.status, 400, `HEAD ${id}`)
      const p = await signed(s, 'PUT', `/v1/blobs/${id}`, { body: 'abc', sha: sha('abc') })
      t.equal(p.status, 400, `PUT ${id}`)
    }
    for (const name of ['../x', '..', 'Upper', 'a/b', '.hidden', 'x'.repeat(129), '-lead', 'a%2Fb']) {
      const g = await signed(s, 'GET', `/v1/records/${name}`)
      t.equal(g.status, 400, `GET record ${name}`)
      t.equal(g.json().error, 'invalid-id')
      const p = await signed(s, 'PUT', `/v1/records/${name}`, { body: 'v', headers: { 'x-edfs-expect-version': 0 } })
      t.equal(p.status, 400, `PUT record ${name}`)
    }
    const l = await signed(s, 'GET', `/v1/blobs?after=${good.toUpperCase()}`)
    t.equal(l.status, 400)
    t.equal(l.json().error, 'invalid-id')
    for (const limit of ['0', '-1', 'x', '100001', '1.5']) t.equal((await signed(s, 'GET', `/v1/blobs?limit=${limit}`)).status, 400, `limit=${limit}`)
    const have = await signed(s, 'POST', '/v1/blobs/have', { body: JSON.stringify({ ids: [good, '../x'] }) })
    t.equal(have.status, 400)
    t.equal(have.json().error, 'invalid-id')
    const many = await signed(s, 'POST', '/v1/blobs/have', { body: JSON.stringify({ ids: Array(MAX_HAVE_IDS + 1).fill(good) }) })
    t.equal(many.status, 400)
    const notJson = await signed(s, 'POST', '/v1/blobs/have', { body: '{nope' })
    t.equal(notJson.status, 400)
    t.equal(notJson.json().error, 'bad-request')
  })

  await t.test('unknown routes 404, wrong methods 405', async (t) => {
    for (const p of ['/', '/v1', '/v2/health', '/v1/nope', '/v1/health/', '/v1/auth', '/v1/records']) {
      const a = await raw(server.url, 'GET', p)
      t.equal(a.status, 404, p)
      t.equal(a.json().error, 'not-found')
    }
    for (const [m, p] of [['POST', '/v1/health'], ['DELETE', '/v1/stats'], ['PATCH', `/v1/blobs/${sha('x')}`], ['GET', '/v1/auth/login'], ['PUT', '/v1/blobs'], ['GET', '/v1/blobs/have'], ['POST', '/v1/records/x']]) {
      const a = await raw(server.url, m!, p!)
      t.equal(a.status, 405, `${m} ${p}`)
      t.equal(a.json().error, 'method-not-allowed')
      t.ok(a.headers.allow, 'Allow header')
    }
  })

  await t.test('missing or bad signatures: 401', async (t) => {
    const none = await raw(server.url, 'GET', '/v1/stats')
    t.equal(none.status, 401)
    t.equal(none.json().error, 'unauthorized')
    const garbage = await raw(server.url, 'GET', '/v1/stats', { headers: { authorization: 'EDFS-HMAC-SHA256 nonsense' } })
    t.equal(garbage.status, 401)
    const wrongKey = await signed(s, 'GET', '/v1/stats', { key: randomBytes(32) })
    t.equal(wrongKey.status, 401)
    t.equal(wrongKey.json().error, 'unauthorized')
    const ok = await signed(s, 'GET', '/v1/stats')
    t.equal(ok.status, 200, 'a good signature still works (resets the failure count)')
  })

  await t.test('body hash header: required, and must match', async (t) => {
    const data = randomBytes(1000)
    const id = sha(data)
    const noHeader = await signed(s, 'PUT', `/v1/blobs/${id}`, { body: data, sha: null })
    t.equal(noHeader.status, 400)
    t.equal(noHeader.json().error, 'bad-request')
    const otherSha = await signed(s, 'PUT', `/v1/blobs/${id}`, { body: data, sha: sha('other') })
    t.equal(otherSha.status, 400)
    t.equal(otherSha.json().error, 'hash-mismatch')
    const rec = await signed(s, 'PUT', '/v1/records/r1', { body: 'value', sha: sha('other value'), headers: { 'x-edfs-expect-version': 0 } })
    t.equal(rec.status, 400)
    t.equal(rec.json().error, 'hash-mismatch')
    t.equal((await signed(s, 'GET', '/v1/records/r1')).status, 404, 'record not written')
    const noVersion = await signed(s, 'PUT', '/v1/records/r1', { body: 'value' })
    t.equal(noVersion.status, 400)
    t.same(blobFiles(), [])
  })

  await t.test('over-limit bodies: 413 and nothing stored', async (t) => {
    const big = randomBytes(MiB + 1)
    const declared = await signed(s, 'PUT', `/v1/blobs/${sha(big)}`, { body: big })
    t.equal(declared.status, 413)
    t.equal(declared.json().error, 'payload-too-large')
    const streamed = await signed(s, 'PUT', `/v1/blobs/${sha(big)}`, { body: big, chunked: true })
    t.equal(streamed.status, 413, 'counted while streaming (no content-length)')
    const exact = randomBytes(MiB)
    t.equal((await signed(s, 'PUT', `/v1/blobs/${sha(exact)}`, { body: exact })).status, 201, 'exactly the limit is fine')
    const bigRecord = randomBytes(MiB + 1)
    const r = await signed(s, 'PUT', '/v1/records/big', { body: bigRecord, headers: { 'x-edfs-expect-version': 0 } })
    t.equal(r.status, 413)
    t.equal((await signed(s, 'GET', '/v1/records/big')).status, 404)
    t.same(blobFiles(), [sha(exact)], 'only the blob within the limit')
    t.same(tmpFiles(), [])
  })

  await t.test('a stalled half body times out and leaves no temp file', async (t) => {
    const data = randomBytes(200_000)
    const id = sha(data)
    const started = Date.now()
    const a = await signed(s, 'PUT', `/v1/blobs/${id}`, { sha: id, headers: { 'content-length': data.length }, stallAfter: data.subarray(0, 100_000) })
    t.equal(a.status, 408)
    t.equal(a.json().error, 'request-timeout')
    t.ok(Date.now() - started < 5000, 'answered promptly')
    await new Promise((r) => setTimeout(r, 100))
    t.same(tmpFiles(), [], 'temp file removed')
    t.notOk(blobFiles().includes(id))
  })
})
