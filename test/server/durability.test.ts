// Restarts, kill -9 in the middle of uploads, and clean shutdown on SIGTERM/SIGINT.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync, readdirSync } from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import { ServerClient } from '../../src/cluster/server-client'
import { TEST_USER, startServer } from '../helpers/servers'
import { authHeader, login, Session } from './raw'

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Uploads `data` in 64 KiB pieces, `delayMs` apart. Resolves with the status, or 0 when the connection died. */
function slowUpload(s: Session, data: Buffer, delayMs: number): Promise<number> {
  const id = sha(data)
  const url = new URL(s.base)
  return new Promise((resolve) => {
    const req = http.request({
      hostname: url.hostname, port: url.port, method: 'PUT', path: `/v1/blobs/${id}`, agent: false,
      headers: { authorization: authHeader(s, 'PUT', `/v1/blobs/${id}`, id), 'x-edfs-content-sha256': id, 'content-length': data.length },
    }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
      res.on('error', () => resolve(0))
    })
    req.on('error', () => resolve(0))
    let wake = () => {}
    req.on('close', () => wake())
    void (async () => {
      for (let off = 0; off < data.length; off += 65536) {
        if (req.destroyed) return
        req.write(data.subarray(off, off + 65536))
        // A pause that ends early when the connection closes (no timer left behind).
        await new Promise<void>((r) => {
          const timer = setTimeout(r, delayMs)
          wake = () => {
            clearTimeout(timer)
            r()
          }
        })
      }
      req.end()
    })()
  })
}

function blobsOnDisk(dataDir: string, user: string): string[] {
  const dir = path.join(dataDir, 'users', user, 'blobs')
  try {
    return readdirSync(dir).flatMap((f) => readdirSync(path.join(dir, f)).map((n) => path.join(dir, f, n)))
  } catch {
    return []
  }
}

t.test('restart keeps blobs, records, counts and the server id', async (t) => {
  const server = await startServer(t)
  const client = new ServerClient({ url: server.url, user: TEST_USER.name, password: TEST_USER.password })
  t.teardown(() => client.close())
  const blobs = Array.from({ length: 10 }, () => randomBytes(30_000))
  for (const b of blobs) await client.putBlob(sha(b), b)
  await client.putRecord('head', 0, Buffer.from('v1'))
  await client.putRecord('head', 1, Buffer.from('v2'))
  const id = server.id
  const url = server.url
  const before = await client.stats()
  await server.restart()
  t.equal(server.id, id, 'same id')
  t.equal(server.url, url, 'same port')
  // The client's session is gone with the restart: it logs in again by itself.
  for (const b of blobs) t.ok((await client.getBlob(sha(b)))!.equals(b))
  t.same(await client.getRecord('head'), { version: 2, value: Buffer.from('v2') })
  const after = await client.stats()
  t.equal(after.blobCount, before.blobCount)
  t.equal(after.bytesStored, before.bytesStored)
  t.equal((await client.health()).id, id)
})

t.test('kill -9 during 50 streaming uploads leaves only whole blobs', async (t) => {
  const server = await startServer(t)
  const s = await login(server.url, TEST_USER.name, TEST_USER.password)
  // Quick uploads (4 pieces) and slow ones (16 pieces, 3 s at least); the kill comes as soon as a
  // quick one is acknowledged, which leaves the slow ones cut whatever the machine's load.
  let acknowledged = 0
  const uploads = Array.from({ length: 50 }, (_, i) => {
    const data = randomBytes(i % 2 === 0 ? 256 * 1024 : 1024 * 1024)
    return slowUpload(s, data, i % 2 === 0 ? 1 : 200).then((status) => {
      if (status === 201) acknowledged++
      return status
    })
  })
  for (let waited = 0; acknowledged === 0 && waited < 20_000; waited += 20) await sleep(20)
  await server.kill9()
  const statuses = await Promise.all(uploads)
  const done = statuses.filter((x) => x === 201).length
  t.ok(done > 0 && done < 50, `some uploads finished (${done}), some were cut`)
  t.ok(readdirSync(path.join(server.dataDir, 'tmp')).length > 0, 'the crash left temp files behind')
  await server.restart()
  t.same(readdirSync(path.join(server.dataDir, 'tmp')), [], 'no temp file after restart')
  const files = blobsOnDisk(server.dataDir, TEST_USER.name)
  t.ok(files.length >= done, 'every acknowledged blob is there')
  for (const f of files) t.equal(sha(readFileSync(f)), path.basename(f), `${path.basename(f).slice(0, 8)} re-hashes to its id`)
  const client = new ServerClient({ url: server.url, user: TEST_USER.name, password: TEST_USER.password })
  t.teardown(() => client.close())
  const listed = await client.listBlobs()
  t.equal(listed.blobs.length, files.length, 'the listing shows exactly those')
  t.equal((await client.stats()).blobCount, files.length)
})

t.test('SIGTERM: in-flight uploads finish within the grace period, stalled ones are aborted, exit 0', async (t) => {
  const server = await startServer(t)
  const s = await login(server.url, TEST_USER.name, TEST_USER.password)
  const finishing = randomBytes(1024 * 1024) // 16 pieces, 40 ms apart: ~0.7 s
  const pFinishing = slowUpload(s, finishing, 40)
  const stalled = randomBytes(1024 * 1024)
  const pStalled = slowUpload(s, stalled, 60_000) // one piece, then silence
  await sleep(200)
  t.equal(readdirSync(path.join(server.dataDir, 'tmp')).length, 2, 'two uploads in flight')
  const started = Date.now()
  await server.stop('SIGTERM')
  t.equal(server.exitCode, 0, 'exit code 0')
  t.ok(Date.now() - started < 10_000, 'stopped promptly')
  t.equal(await pFinishing, 201, 'the upload in progress completed')
  t.equal(await pStalled, 0, 'the stalled one was cut')
  t.same(readdirSync(path.join(server.dataDir, 'tmp')), [], 'no temp file left')
  const files = blobsOnDisk(server.dataDir, TEST_USER.name).map((f) => path.basename(f))
  t.same(files, [sha(finishing)])
  await server.restart()
  await server.stop('SIGINT')
  t.equal(server.exitCode, 0, 'SIGINT: exit code 0 as well')
})
