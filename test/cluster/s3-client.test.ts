// The S3 member against a store that answers badly (a fake on loopback; the real store is in
// test/e2e/s3.test.ts): a range answered with more bytes than asked for is refused, never kept.
import t from 'tap'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { once } from 'node:events'
import { S3MemberClient } from '../../src/cluster/s3-client'
import { BufferPool } from '../../src/protocol'

const ID = 'ab'.repeat(32)

t.test('a range answered longer than asked for is an error', async (t) => {
  const body = Buffer.alloc(5000, 1)
  const server = http.createServer((req, res) => {
    // Claims a length, or sends without one (chunked): both longer than the 100 bytes asked for.
    if (req.url?.includes('chunked')) {
      res.writeHead(206, { 'content-type': 'application/octet-stream' })
      res.end(body)
    } else res.writeHead(206, { 'content-length': body.length, 'content-type': 'application/octet-stream' }).end(body)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => server.close())
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test-secret', AWS_REGION: 'us-east-1' })
  for (const prefix of ['', 'chunked/']) {
    const client = new S3MemberClient({ url: `s3://bucket/${prefix}`, bucket: 'bucket', prefix, endpoint, pathStyle: true, region: 'us-east-1', timeoutMs: 5000 })
    t.teardown(() => client.close())
    const pool = new BufferPool(1 << 20, 1 << 20)
    await t.rejects(client.getBlob(ID, { start: 0, end: 100 }, pool), /an answer of 5000 bytes to a request for at most 100/, `${prefix || 'with a length'}: refused`)
    t.equal(pool.bytes, 0, 'nothing of it was kept')
    const whole = await client.getBlob(ID, { start: 0, end: 5000 })
    t.equal(whole?.length, 5000, 'an answer as long as asked for comes back')
  }
})
