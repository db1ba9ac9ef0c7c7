// A password's login keys are derived once per (password, salt, parameters) and process: servers
// sharing a user's verifier cost one scrypt, and nothing is mixed up between servers, passwords or
// users that differ.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { loginKeys } from '../../src/cluster/login-keys'
import { ServerClient } from '../../src/cluster/server-client'
import { AUTH_SCRYPT, deriveKeys } from '../../src/protocol'
import { TEST_USER, runEdfs, startServer, startServers, tmpDir } from '../helpers/servers'

t.test('one derivation per password, salt and parameters', async (t) => {
  const salt = randomBytes(32)
  const first = loginKeys('pw', salt, AUTH_SCRYPT)
  t.equal(loginKeys('pw', salt, AUTH_SCRYPT), first, 'asked again (even while it runs): the same derivation')
  t.not(loginKeys('other', salt, AUTH_SCRYPT), first, 'another password')
  t.not(loginKeys('pw', randomBytes(32), AUTH_SCRYPT), first, 'another salt')
  t.not(loginKeys('pw', salt, { ...AUTH_SCRYPT, r: 4 }), first, 'other parameters')
  t.same(await first, await deriveKeys('pw', salt, AUTH_SCRYPT), 'the keys are those of deriveKeys')
})

t.test('a derivation that fails is not remembered', async (t) => {
  const salt = randomBytes(32)
  const bad = { N: 3, r: 8, p: 1 } // not a power of two: scrypt refuses it
  const failed = loginKeys('pw', salt, bad)
  await t.rejects(failed)
  t.not(loginKeys('pw', salt, bad), failed, 'asked again: derived again')
  await t.rejects(loginKeys('pw', salt, bad))
})

t.test('servers with one verifier and a server with its own salt: each login is right', async (t) => {
  const shared = await startServers(t, 2) // the test helper writes one verifier to both
  const dataDir = tmpDir(t)
  const added = await runEdfs(['server', 'useradd', TEST_USER.name, '--data', dataDir, '--password-stdin'], { input: `${TEST_USER.password}\n` })
  t.equal(added.code, 0, added.stderr)
  const own = await startServer(t, { dataDir, users: [] })
  for (const s of [...shared, own]) {
    const c = new ServerClient({ url: s.url, user: TEST_USER.name, password: TEST_USER.password })
    const wrong = new ServerClient({ url: s.url, user: TEST_USER.name, password: `${TEST_USER.password}!` })
    t.teardown(() => {
      c.close()
      wrong.close()
    })
    await c.login()
    t.pass(`logged in to ${s.url}`)
    t.match(await wrong.login().catch((e: unknown) => e), { status: 401 }, 'a wrong password still fails after a right one with the same salt')
  }
})
