// Login, request signatures (stale, replayed, forged, missing), unknown users, the rate limit per
// address, and user changes picked up by a running server.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { ServerClient } from '../../src/cluster/server-client'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { AUTH_SCRYPT, SIGNATURE_WINDOW_MS, makeVerifier } from '../../src/protocol'
import { fromVerifier, parseUsers } from '../../servers/users'
import { TEST_USER, runEdfs, startServer, tmpDir } from '../helpers/servers'
import { authHeader, login, raw, signed } from './raw'

t.test('authentication', async (t) => {
  const server = await startServer(t)

  await t.test('wrong password and unknown user fail alike', async (t) => {
    const wrong = new ServerClient({ url: server.url, user: TEST_USER.name, password: 'wrong password' })
    const ghost = new ServerClient({ url: server.url, user: 'ghost', password: 'whatever' })
    t.teardown(() => {
      wrong.close()
      ghost.close()
    })
    const e1 = await wrong.login().catch((e) => e)
    const e2 = await ghost.login().catch((e) => e)
    t.match(e1, { status: 401, code: 'unauthorized' })
    t.match(e2, { status: 401, code: 'unauthorized' })
    t.equal(e1.body.message, e2.body.message, 'same message')
    // Challenges for a real and an unknown user look the same; the fake salt is stable.
    const ch = async (user: string) => (await raw(server.url, 'POST', '/v1/auth/challenge', { body: JSON.stringify({ user, clientNonce: 'abcdefghijklmnop' }) })).json()
    const real = await ch(TEST_USER.name)
    const fake1 = await ch('ghost')
    const fake2 = await ch('ghost')
    t.same(Object.keys(real).sort(), Object.keys(fake1).sort())
    t.equal(fake1.salt, fake2.salt, 'deterministic fake salt')
    t.equal(Buffer.from(fake1.salt, 'base64').length, Buffer.from(real.salt, 'base64').length)
    t.same([fake1.N, fake1.r, fake1.p], [real.N, real.r, real.p])
    t.not(fake1.serverNonce, fake2.serverNonce)
    const ok = new ServerClient({ url: server.url, user: TEST_USER.name, password: TEST_USER.password })
    t.teardown(() => ok.close())
    await ok.login()
    t.equal((await ok.stats()).blobCount, 0, 'the right password works')
  })

  await t.test('signatures: missing, forged, stale, replayed, unknown session', async (t) => {
    const s = await login(server.url, TEST_USER.name, TEST_USER.password)
    const missing = await raw(server.url, 'GET', '/v1/stats')
    t.match({ status: missing.status, ...missing.json() }, { status: 401, error: 'unauthorized' })
    const forged = await signed(s, 'GET', '/v1/stats', { key: randomBytes(32) })
    t.match({ status: forged.status, ...forged.json() }, { status: 401, error: 'unauthorized' })
    // Signed for another path: the signature covers path and query.
    const moved = await raw(server.url, 'GET', '/v1/blobs?limit=5', { headers: { authorization: authHeader(s, 'GET', '/v1/blobs?limit=6', '') } })
    t.equal(moved.status, 401)
    const old = await signed(s, 'GET', '/v1/stats', { ts: Date.now() - SIGNATURE_WINDOW_MS - 5000 })
    t.match({ status: old.status, ...old.json() }, { status: 401, error: 'stale-request' })
    const future = await signed(s, 'GET', '/v1/stats', { ts: Date.now() + SIGNATURE_WINDOW_MS + 5000 })
    t.match({ status: future.status, ...future.json() }, { status: 401, error: 'stale-request' })
    const headers = { authorization: authHeader(s, 'GET', '/v1/stats', '') }
    t.equal((await raw(server.url, 'GET', '/v1/stats', { headers })).status, 200, 'first use')
    const again = await raw(server.url, 'GET', '/v1/stats', { headers })
    t.match({ status: again.status, ...again.json() }, { status: 401, error: 'replayed' })
    const unknown = await signed({ ...s, session: randomBytes(16).toString('hex') }, 'GET', '/v1/stats')
    t.match({ status: unknown.status, ...unknown.json() }, { status: 401, error: 'session-expired' })
    // A body must match its signed hash.
    const tampered = await signed(s, 'PUT', '/v1/records/x', { body: 'evil', sha: '0'.repeat(64), headers: { 'x-edfs-expect-version': 0 } })
    t.equal(tampered.status, 400)
    t.equal((await signed(s, 'GET', '/v1/records/x')).status, 404)
  })

  await t.test('user changes reach the running server', async (t) => {
    const data = ['--data', server.dataDir, '--password-stdin']
    t.equal((await runEdfs(['server', 'useradd', 'carol', ...data], { input: 'carol pw 1\n' })).code, 0)
    const carol = new ServerClient({ url: server.url, user: 'carol', password: 'carol pw 1' })
    t.teardown(() => carol.close())
    await carol.login()
    t.equal(await carol.putRecord('r', 0, Buffer.from('x')), 1, 'a new user works at once')
    t.equal((await runEdfs(['server', 'passwd', 'carol', ...data], { input: 'carol pw 2\n' })).code, 0)
    await new Promise((r) => setTimeout(r, 1100)) // signed requests re-check the users file at most once a second
    await t.rejects(carol.getRecord('r'), { status: 401, code: 'unauthorized' }, 'old session ends, old password fails')
    const carol2 = new ServerClient({ url: server.url, user: 'carol', password: 'carol pw 2' })
    t.teardown(() => carol2.close())
    t.equal((await carol2.getRecord('r'))?.version, 1, 'new password works, data kept')
    t.equal((await runEdfs(['server', 'userdel', 'carol', '--data', server.dataDir])).code, 0)
    await new Promise((r) => setTimeout(r, 1100))
    await t.rejects(carol2.getRecord('r'), { status: 401, code: 'unauthorized' }, 'removed user is out')
  })
})

t.test('rate limit per remote address', async (t) => {
  const server = await startServer(t)
  const attempt = (password: string, localAddress: string) =>
    login(server.url, TEST_USER.name, password, localAddress).then(() => 200, (e: { status?: number; answer?: { headers: Record<string, string> } }) => {
      if (e.status === 429) t.ok(Number(e.answer?.headers['retry-after']) >= 1, 'Retry-After')
      return e.status ?? 0
    })
  const results: number[] = []
  for (let i = 0; i < 5; i++) results.push(await attempt('bad', '127.0.0.1'))
  t.same(results, [401, 401, 401, 401, 401], 'five failures are answered normally')
  t.equal(await attempt(TEST_USER.password, '127.0.0.1'), 429, 'then the address is refused, even with the right password')
  const other = await raw(server.url, 'POST', '/v1/auth/challenge', { body: JSON.stringify({ user: 'alice', clientNonce: 'abcdefghijkl' }), localAddress: '127.0.0.1' })
  t.equal(other.status, 429)
  t.equal(other.json().error, 'too-many-attempts')
  t.equal(await attempt(TEST_USER.password, '127.0.0.2'), 200, 'another address is unaffected')
  await new Promise((r) => setTimeout(r, 1100)) // first back-off is 1 s
  t.equal(await attempt('bad', '127.0.0.1'), 401, 'after the back-off an attempt is answered again')
  t.equal(await attempt(TEST_USER.password, '127.0.0.1'), 429, 'and the next back-off (2 s) is longer')
  await new Promise((r) => setTimeout(r, 2100))
  t.equal(await attempt(TEST_USER.password, '127.0.0.1'), 200, 'a success resets the count')
  t.equal(await attempt('bad', '127.0.0.1'), 401)
  t.equal(await attempt(TEST_USER.password, '127.0.0.1'), 200, 'one failure after a reset is not blocked')

  // Bad request signatures count as failures too.
  const s = await login(server.url, TEST_USER.name, TEST_USER.password, '127.0.0.3')
  const codes: number[] = []
  for (let i = 0; i < 6; i++) codes.push((await signed(s, 'GET', '/v1/stats', { key: randomBytes(32) })).status)
  t.same(codes, [401, 401, 401, 401, 401, 429])
  t.equal((await signed(s, 'GET', '/v1/stats')).status, 429, 'good signature from that address: refused during back-off')
  t.equal((await signed({ ...s, localAddress: '127.0.0.4' }, 'GET', '/v1/stats')).status, 200, 'same session from elsewhere works')
})

t.test('a guesser with an account of their own is slowed all the same', async (t) => {
  const bob = { name: 'bob', password: 'bob has his own password' }
  const server = await startServer(t, { users: [TEST_USER, bob] })
  const addr = '127.0.0.5'
  const as = (u: { name: string }, password: string, from = addr) => login(server.url, u.name, password, from).then(() => 200, (e: { status?: number }) => e.status ?? 0)
  const guesses: number[] = []
  const bobs: number[] = []
  // bob logs in between every two guesses at alice's password, from the same address.
  for (let round = 0; round < 4; round++) {
    bobs.push(await as(bob, bob.password))
    guesses.push(await as(TEST_USER, `guess ${round}a`), await as(TEST_USER, `guess ${round}b`))
  }
  t.same(guesses.slice(0, 5), [401, 401, 401, 401, 401], 'five guesses are answered')
  t.ok(guesses.slice(5).every((c) => c === 429), `then alice is refused at that address: ${guesses}`)
  t.ok(bobs.every((c) => c === 200), 'bob\'s own logins go on working and do not reset alice\'s count')
  t.equal(await as(TEST_USER, TEST_USER.password), 429, 'even alice\'s right password waits out the back-off there')
  t.equal(await as(TEST_USER, TEST_USER.password, '127.0.0.6'), 200, 'from another address alice logs in')
})

t.test('a declared body over the limit gets 413 at once, not after the idle timeout', async (t) => {
  const server = await startServer(t)
  const t0 = Date.now()
  const r = await raw(server.url, 'POST', '/v1/auth/challenge', { headers: { 'content-length': '99999999999', 'content-type': 'application/json' }, stallAfter: Buffer.from('{') })
  t.equal(r.status, 413)
  t.equal(r.json().error, 'payload-too-large')
  t.ok(Date.now() - t0 < 5000, `answered in ${Date.now() - t0} ms`)
  t.equal(r.headers.connection, 'close', 'and the connection closes (the body is not read)')
})

t.test('a users file of version 1 (before `next`) still serves logins; an unknown version is refused', async (t) => {
  const dataDir = tmpDir(t)
  // Written exactly as the released version 1 wrote it.
  const v1 = { format: 'edfs-users', version: 1, users: { [TEST_USER.name]: fromVerifier(await makeVerifier(TEST_USER.password, AUTH_SCRYPT)) } }
  await writeFile(path.join(dataDir, 'users.json'), `${JSON.stringify(v1, null, 2)}\n`, { mode: 0o600 })
  const server = await startServer(t, { dataDir, users: [] })
  const c = new ServerClient({ url: server.url, user: TEST_USER.name, password: TEST_USER.password })
  t.teardown(() => c.close())
  await c.login()
  t.pass('a version 1 users file logs in')
  t.throws(() => parseUsers(JSON.stringify({ ...v1, version: 3 }), 'users.json'), /users file version 3; this edfs reads 1 and 2/)
})
