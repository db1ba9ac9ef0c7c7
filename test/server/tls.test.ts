// HTTPS with a self-signed certificate made by openssl in the test; the client pins it as its CA.
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { ServerClient } from '../../src/cluster/server-client'
import { TEST_USER, runEdfs, startServer, tmpDir } from '../helpers/servers'

const run = promisify(execFile)
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

/** A server on a self-signed certificate for 127.0.0.1, made by openssl in `dir`. */
async function selfSignedServer(t: Test, dir: string) {
  const cert = path.join(dir, 'cert.pem')
  const key = path.join(dir, 'key.pem')
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
    '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'])
  return { cert, server: await startServer(t, { args: ['--tls-cert', cert, '--tls-key', key] }) }
}

t.test('TLS round trip with a self-signed certificate', async (t) => {
  try {
    await run('openssl', ['version'])
  } catch {
    t.pass('TLS test skipped', { skip: 'openssl is not installed: cannot make a test certificate' })
    return
  }
  const dir = tmpDir(t)
  const { cert, server } = await selfSignedServer(t, dir)
  t.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/)
  for (const longLived of [false, true]) {
    const how = longLived ? 'undici' : 'node-http'
    const client = new ServerClient({ url: server.url, user: TEST_USER.name, password: TEST_USER.password, ca: readFileSync(cert), longLived })
    t.teardown(() => client.close())
    const data = randomBytes(5 * 1024 * 1024)
    t.equal(await client.putBlob(sha(data), data), 'created', `${how}: a blob stored`)
    t.ok((await client.getBlob(sha(data)))!.equals(data), `${how}: and read back`)
    t.same(await client.getBlob(sha(data), { start: 10, end: 20 }), data.subarray(10, 20))
    t.equal(await client.putRecord(`head-${how}`, 0, Buffer.from('over tls')), 1)
    t.equal((await client.health()).id, server.id)
    const untrusting = new ServerClient({ url: server.url, user: TEST_USER.name, password: TEST_USER.password, longLived })
    t.teardown(() => untrusting.close())
    await t.rejects(untrusting.health(), { name: 'UnreachableError' }, `${how}: without the CA the certificate is refused`)
  }
})

t.test('edfs init --ca: stored absolute, and an untrusted certificate says what to do', async (t) => {
  const dir = tmpDir(t)
  const { cert, server } = await selfSignedServer(t, dir)
  const env = { EDFS_PASSWORD: TEST_USER.password, EDFS_CONFIG: '' }
  const config = path.join(dir, 'cfg', 'config.json')
  const untrusted = await runEdfs(['init', '--servers', server.url, '--user', TEST_USER.name, '--replicas', '1', '--config', config], { env })
  t.equal(untrusted.code, 1)
  t.match(untrusted.stderr, /TLS certificate is not trusted: give the CA that signed it with edfs init --ca FILE/, 'the error names the fix')
  const missing = await runEdfs(['init', '--servers', server.url, '--user', TEST_USER.name, '--ca', 'nope.pem', '--config', config], { env, cwd: dir })
  t.equal(missing.code, 1)
  t.match(missing.stderr, /--ca nope\.pem: cannot read .*nope\.pem \(ENOENT\)/)
  const ok = await runEdfs(['init', '--servers', server.url, '--user', TEST_USER.name, '--replicas', '1', '--ca', 'cert.pem', '--config', config], { env, cwd: dir })
  t.equal(ok.code, 0, `init with a relative --ca: ${ok.stderr}`)
  t.equal(JSON.parse(readFileSync(config, 'utf8')).ca, cert, 'stored as an absolute path')
  const elsewhere = await runEdfs(['ls', '/', '--config', config], { env, cwd: '/' })
  t.equal(elsewhere.code, 0, `a command from another directory finds the CA: ${elsewhere.stderr}`)
})

t.test('edfs tls init: a CA and a server certificate the servers and clients use as they are', async (t) => {
  const dir = tmpDir(t)
  const out = path.join(dir, 'certs')
  const made = await runEdfs(['tls', 'init', '--names', 'localhost,127.0.0.1', '--out', out])
  t.equal(made.code, 0, `tls init: ${made.stderr}`)
  t.match(made.stdout, /ca\.crt/)
  const mode = statSync(path.join(out, 'server.key')).mode & 0o777
  t.equal(mode, 0o600, 'the key is private')
  const server = await startServer(t, { args: ['--tls-cert', path.join(out, 'server.crt'), '--tls-key', path.join(out, 'server.key')] })
  const env = { EDFS_PASSWORD: TEST_USER.password, EDFS_CONFIG: '' }
  const config = path.join(dir, 'config.json')
  const init = await runEdfs(['init', '--servers', server.url, '--user', TEST_USER.name, '--replicas', '1', '--ca', path.join(out, 'ca.crt'), '--config', config], { env })
  t.equal(init.code, 0, `a client trusting only the new CA connects: ${init.stderr}`)
  const again = await runEdfs(['tls', 'init', '--names', 'localhost', '--out', out])
  t.equal(again.code, 1)
  t.match(again.stderr, /exists \(use --force to replace it\)/, 'existing certificates are not overwritten')
  const bad = await runEdfs(['tls', 'init', '--names', 'not a name!', '--out', path.join(dir, 'x')])
  t.match(bad.stderr, /not a host name or IP address: not a name!/)
})
