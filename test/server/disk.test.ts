// The disk side: a full disk answers 507 and keeps no partial blob; servers name their disk; one
// server per data directory; an unusable data directory stops the server at start with one clear
// line and exit code 1.
import t from 'tap'
import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { ServerClient } from '../../src/cluster/server-client'
import { RunningServer, TEST_USER, runEdfs, startServer, tmpDir } from '../helpers/servers'

const run = promisify(execFile)
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

t.test('disk full: 507 insufficient-storage and no partial blob; the disk id in health', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'edfs-tmpfs-'))
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir])
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    t.pass('disk-full test skipped', { skip: `cannot mount a small tmpfs here (needs root): ${(err as Error).message.split('\n')[0]}` })
    return
  }
  let server: RunningServer | undefined
  t.teardown(async () => {
    await server?.kill9()
    await run('umount', ['-l', dir]).catch(() => undefined)
    rmSync(dir, { recursive: true, force: true })
  })
  server = await startServer(t, { dataDir: dir })
  const client = new ServerClient({ url: server.url, user: TEST_USER.name, password: TEST_USER.password })
  t.teardown(() => client.close())
  const onTmp = await startServer(t)
  const onTmp2 = await startServer(t)
  const disk = async (s: RunningServer) => {
    const c = new ServerClient({ url: s.url, user: '', password: '' })
    try {
      return (await c.health()).disk
    } finally {
      c.close()
    }
  }
  t.match(await disk(server), /^[0-9a-f]{32}$/, 'health names the disk by an opaque id')
  t.not(await disk(server), await disk(onTmp), 'a server on another file system reports another disk')
  t.equal(await disk(onTmp), await disk(onTmp2), 'two servers on one file system report the same disk')
  const big = randomBytes(3 * 1024 * 1024)
  await t.rejects(client.putBlob(sha(big), big), { status: 507, code: 'insufficient-storage' })
  t.same(readdirSync(path.join(dir, 'tmp')), [], 'temp file removed')
  t.equal(await client.headBlob(sha(big)), null, 'nothing stored')
  const small = randomBytes(100_000)
  t.equal(await client.putBlob(sha(small), small), 'created', 'the space is free again: small blobs still fit')
  t.ok((await client.getBlob(sha(small)))!.equals(small))
})

t.test('one server per data directory; a killed server\'s lock is taken over at once', async (t) => {
  const first = await startServer(t)
  const lock = path.join(first.dataDir, 'server.lock')
  t.ok(existsSync(lock), 'the running server holds server.lock')
  const r = await runEdfs(['server', '--data', first.dataDir, '--port', '0'])
  t.equal(r.code, 1, 'a second server on the same directory: exit 1')
  t.equal(r.stdout, '', 'no ready line')
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line')
  t.match(r.stderr, new RegExp(`data directory .* is in use by another edfs server \\(pid ${first.pid}\\): stop it, or give this one another --data`))
  t.ok(existsSync(lock), 'the refused server left the lock alone')
  const client = new ServerClient({ url: first.url, user: TEST_USER.name, password: TEST_USER.password })
  t.teardown(() => client.close())
  const data = randomBytes(1000)
  t.equal(await client.putBlob(sha(data), data), 'created', 'the first server still works')

  await first.kill9()
  t.ok(existsSync(lock), 'SIGKILL leaves the lock behind')
  await first.restart()
  t.ok((await client.getBlob(sha(data)))!.equals(data), 'and serves the data')
  await first.stop()
  t.notOk(existsSync(lock), 'a clean stop removes the lock')
})

t.test('unusable data directory: one clear line, exit 1', async (t) => {
  const base = tmpDir(t)
  const file = path.join(base, 'a-file')
  writeFileSync(file, 'not a directory')
  const r = await runEdfs(['server', '--data', path.join(file, 'data'), '--port', '0'])
  t.equal(r.code, 1, 'exit 1')
  t.equal(r.stdout, '', 'no ready line')
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line')
  t.match(r.stderr, /data directory .* is not usable: a parent is not a directory/)

  const ro = path.join(base, 'read-only')
  mkdirSync(ro)
  try {
    await run('mount', ['--bind', ro, ro])
  } catch (err) {
    t.pass('read-only data directory test skipped', { skip: `read-only bind mount not possible here: ${(err as Error).message.split('\n')[0]}` })
    return
  }
  t.teardown(() => run('umount', ['-l', ro]).catch(() => undefined))
  await run('mount', ['-o', 'remount,ro,bind', ro])
  const r2 = await runEdfs(['server', '--data', ro, '--port', '0'])
  t.equal(r2.code, 1, 'read-only data directory: exit 1 (even as root)')
  t.equal(r2.stderr.trim().split('\n').length, 1, 'one line')
  t.match(r2.stderr, /data directory .* is not usable: read-only file system/)
})
