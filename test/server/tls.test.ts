// HTTPS with a self-signed certificate made by openssl in the test; the client pins it as its CA.
import t from 'tap'
import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { promisify } from 'node:util'
import { ServerClient } from '../../src/cluster/server-client'
import { TEST_USER, startServer, tmpDir } from '../helpers/servers'

const run = promisify(execFile)
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

t.test('TLS round trip with a self-signed certificate', async (t) => {
  try {
    await run('openssl', ['version'])
  } catch {
    t.pass('TLS test skipped', { skip: 'openssl is not installed: cannot make a test certificate' })
    return
  }
  const dir = tmpDir(t)
  const cert = path.join(dir, 'cert.pem')
  const key = path.join(dir, 'key.pem')
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
    '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'])
  const server = await startServer(t, { args: ['--tls-cert', cert, '--tls-key', key] })
  t.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/)
  const client = new ServerClient({ url: server.url, user: TEST_USER.name, password: TEST_USER.password, ca: readFileSync(cert) })
  t.teardown(() => client.close())
  const data = randomBytes(5 * 1024 * 1024)
  t.equal(await client.putBlob(sha(data), data), 'created')
  t.ok((await client.getBlob(sha(data)))!.equals(data))
  t.same(await client.getBlob(sha(data), { start: 10, end: 20 }), data.subarray(10, 20))
  t.equal(await client.putRecord('head', 0, Buffer.from('over tls')), 1)
  t.equal((await client.health()).id, server.id)
  const untrusting = new ServerClient({ url: server.url, user: TEST_USER.name, password: TEST_USER.password })
  t.teardown(() => untrusting.close())
  await t.rejects(untrusting.health(), { name: 'UnreachableError' }, 'without the CA the certificate is refused')
})
