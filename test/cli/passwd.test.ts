// edfs passwd changes the login on every server and the key file together, and a kill -9 after any
// single action (one server's login, one copy of the key file) leaves a password that opens the
// volume: the current one until the key file was rewrapped, the new one after. Run again, it
// finishes. `edfs server passwd` says what it does not change.
import t from 'tap'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { runEdfs } from '../helpers/servers'
import { TEST_USER, makeCliVolume } from './cli-helpers'

t.test('edfs passwd, interrupted after every action', async (t) => {
  const v = await makeCliVolume(t, 3)
  const local = path.join(v.dir, 'f')
  await writeFile(local, 'the contents\n')
  await v.ok(t, ['put', local, '/f'])
  const opens = async (pw: string) => (await v.run(['cat', '/f'], { env: { EDFS_PASSWORD: pw } })).stdout === 'the contents\n'
  // 3 logins + 3 keyfile-next copies + 3 key file copies + the local copy + 3 logins.
  const ACTIONS = 13
  const REWRAPPED_AFTER = 6
  let current = TEST_USER.password
  for (let k = 1; k <= ACTIONS; k++) {
    const next = `new password number ${k}`
    const r = await v.run(['passwd', '--password-stdin'], { input: `${current}\n${next}\n`, env: { EDFS_TEST_PASSWD_CRASH_AFTER: String(k) } })
    t.equal(r.signal, 'SIGKILL', `killed after action ${k}`, { stderr: r.signal ? undefined : r.stderr })
    const newWorks = k >= REWRAPPED_AFTER
    const works = newWorks ? next : current
    t.ok(await opens(works), `after a kill at action ${k}: the ${newWorks ? 'new' : 'current'} password opens the volume`)
    if (k >= REWRAPPED_AFTER) t.equal(/key file rewrapped/.test(r.stderr), true, 'and the command had said so')
    current = works
  }
  const final = await v.run(['passwd', '--password-stdin'], { input: `${current}\nthe final password\n` })
  t.equal(final.code, 0, `an uninterrupted run: ${final.stderr}`)
  t.match(final.stdout, /password changed/)
  t.ok(await opens('the final password'), 'the new password opens the volume')
  t.notOk(await opens(current), 'the old one no longer does')
  const elsewhere = path.join(v.dir, 'other.json')
  const attach = await v.run(['init', '--servers', v.servers[0]!.url, '--user', TEST_USER.name], { config: elsewhere, env: { EDFS_PASSWORD: 'the final password' } })
  t.equal(attach.code, 0, `a new machine attaches with the new password: ${attach.stderr}`)

  const same = await v.run(['passwd', '--password-stdin'], { input: 'the final password\nthe final password\n' })
  t.equal(same.code, 1)
  t.match(same.stderr, /the same as the current one/)
  const wrong = await v.run(['passwd', '--password-stdin'], { input: 'not it\nsomething else entirely\n' })
  t.equal(wrong.code, 1)
  t.match(wrong.stderr, /wrong user name or password/)
  t.ok(await opens('the final password'), 'failed attempts changed nothing')

  const admin = await runEdfs(['server', 'passwd', TEST_USER.name, '--data', v.servers[0]!.dataDir, '--password-stdin'], { input: 'admin reset pw\n' })
  t.equal(admin.code, 0)
  t.match(admin.stderr, /not changed: the other servers, and the key file/, 'the admin reset says what it leaves alone')
})
