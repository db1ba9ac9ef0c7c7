// `edfs server useradd/passwd/userdel` and the command's help and usage errors.
import t from 'tap'
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { ProcessLock } from '../../servers/process-lock'
import { runEdfs, tmpDir } from '../helpers/servers'

t.test('user management', async (t) => {
  const data = tmpDir(t)
  const file = path.join(data, 'users.json')
  const add = await runEdfs(['server', 'useradd', 'alice', '--data', data, '--password-stdin'], { input: 'secret password 1\n' })
  t.equal(add.code, 0, add.stderr)
  t.equal(statSync(file).mode & 0o777, 0o600, 'users file is 0600')
  const text = readFileSync(file, 'utf8')
  t.notMatch(text, /secret password/, 'no password in the file')
  const entry = JSON.parse(text).users.alice
  t.same(Object.keys(entry).sort(), ['N', 'p', 'r', 'salt', 'serverKey', 'storedKey'])
  t.equal(Buffer.from(entry.salt, 'base64').length, 32)

  const dup = await runEdfs(['server', 'useradd', 'alice', '--data', data, '--password-stdin'], { input: 'x\n' })
  t.equal(dup.code, 1)
  t.match(dup.stderr, /already exists/)
  const env = await runEdfs(['server', 'useradd', 'bob', '--data', data], { env: { EDFS_PASSWORD: 'from env' } })
  t.equal(env.code, 0, 'EDFS_PASSWORD works')
  const none = await runEdfs(['server', 'useradd', 'carol', '--data', data], { env: { EDFS_PASSWORD: undefined as unknown as string } })
  t.equal(none.code, 1)
  t.match(none.stderr, /no password/)
  const badName = await runEdfs(['server', 'useradd', '../evil', '--data', data, '--password-stdin'], { input: 'x\n' })
  t.equal(badName.code, 1)
  t.match(badName.stderr, /invalid user name/)
  const noData = await runEdfs(['server', 'useradd', 'dave', '--password-stdin'], { input: 'x\n' })
  t.equal(noData.code, 1)
  t.match(noData.stderr, /--data/)

  const before = JSON.parse(readFileSync(file, 'utf8')).users.alice.storedKey
  t.equal((await runEdfs(['server', 'passwd', 'alice', '--data', data, '--password-stdin'], { input: 'secret password 2\n' })).code, 0)
  t.not(JSON.parse(readFileSync(file, 'utf8')).users.alice.storedKey, before, 'passwd changes the verifier')
  t.equal((await runEdfs(['server', 'passwd', 'nobody', '--data', data, '--password-stdin'], { input: 'x\n' })).code, 1)
  t.equal((await runEdfs(['server', 'userdel', 'bob', '--data', data])).code, 0)
  t.same(Object.keys(JSON.parse(readFileSync(file, 'utf8')).users), ['alice'])
  const gone = await runEdfs(['server', 'userdel', 'bob', '--data', data])
  t.equal(gone.code, 1)
  t.match(gone.stderr, /no user bob/)
  t.equal(statSync(file).mode & 0o777, 0o600, 'still 0600 after rewrites')
})

t.test('the users file lock: a dead command\'s is taken over, a live one is waited for', async (t) => {
  const data = tmpDir(t)
  const lockFile = path.join(data, 'users.json.lock')
  const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  writeFileSync(lockFile, JSON.stringify({ boot, pid: process.pid, start: 'not this process' }))
  const add = await runEdfs(['server', 'useradd', 'alice', '--data', data, '--password-stdin'], { input: 'pw 1\n' })
  t.equal(add.code, 0, `a stale lock is taken over: ${add.stderr}`)
  t.notOk(existsSync(lockFile), 'and removed when done')

  const held = ProcessLock.tryAcquire(lockFile)
  t.type(held, ProcessLock, 'this test process takes the lock')
  const blocked = await runEdfs(['server', 'useradd', 'bob', '--data', data, '--password-stdin'], { input: 'pw 2\n', timeoutMs: 30_000 })
  t.equal(blocked.code, 1, 'a command finding the lock held gives up after a while')
  t.match(blocked.stderr, new RegExp(`users\\.json\\.lock is held by another edfs command \\(pid ${process.pid}\\)`))
  t.same(Object.keys(JSON.parse(readFileSync(path.join(data, 'users.json'), 'utf8')).users), ['alice'], 'nothing changed')
  ;(held as ProcessLock).release()
  t.equal((await runEdfs(['server', 'useradd', 'bob', '--data', data, '--password-stdin'], { input: 'pw 2\n' })).code, 0, 'free again')
})

t.test('help texts have examples; usage errors are one line', async (t) => {
  for (const sub of [[], ['useradd'], ['userdel'], ['passwd']]) {
    const r = await runEdfs(['server', ...sub, '--help'])
    t.equal(r.code, 0)
    t.match(r.stdout, /Examples:\n\s+edfs server/, `edfs server ${sub.join(' ')} --help`)
  }
  const noData = await runEdfs(['server', '--port', '0'])
  t.equal(noData.code, 1)
  t.equal(noData.stderr, 'edfs: --data: required: the server\'s data directory (see edfs server --help)\n', 'one line')
  const tlsHalf = await runEdfs(['server', '--data', tmpDir(t), '--tls-cert', 'x.pem'])
  t.equal(tlsHalf.code, 1)
  t.match(tlsHalf.stderr, /--tls-cert and --tls-key go together/)
  const blocker = net.createServer().listen(0, '127.0.0.1')
  await new Promise((r) => blocker.once('listening', r))
  t.teardown(() => blocker.close())
  const port = (blocker.address() as net.AddressInfo).port
  const busy = await runEdfs(['server', '--data', tmpDir(t), '--port', String(port)])
  t.equal(busy.code, 1)
  t.match(busy.stderr, /already in use/)
})
