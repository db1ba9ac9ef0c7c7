// Member URLs: the one canonical spelling of servers and S3 buckets, and a clear error for each bad one;
// a store that ignores conditional writes refused at first contact, never used without CAS; a busy
// store (503 SlowDown) asked again with back-off.
import t from 'tap'
import type { Test } from 'tap'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Cluster, ClusterConfigError, ClusterConnectError, classify, memberClient, memberUrl, parseMemberUrl } from '../../src/cluster'

t.test('canonical spellings', async (t) => {
  t.equal(memberUrl('http://127.0.0.1:7001/'), 'http://127.0.0.1:7001')
  t.equal(memberUrl('HTTPS://Host.Example:7001'), 'https://host.example:7001')
  t.equal(memberUrl('s3://my-bucket'), 's3://my-bucket/')
  t.equal(memberUrl('s3://my-bucket/a/b/'), 's3://my-bucket/a/b')
  t.equal(
    memberUrl('s3://my-bucket/edfs?path-style=true&endpoint=http://127.0.0.1:7480/&capacity=2TiB&region=eu-west-1'),
    's3://my-bucket/edfs?endpoint=http%3A%2F%2F127.0.0.1%3A7480&region=eu-west-1&path-style=1&capacity=2199023255552',
    'options in one order, the endpoint as an origin, the capacity in bytes',
  )
  t.equal(memberUrl(memberUrl('s3://b-1/p?endpoint=http://h:1&profile=work')), memberUrl('s3://b-1/p?endpoint=http://h:1&profile=work'), 'canonical is a fixed point')
  const where = parseMemberUrl('s3://my-bucket/vol?endpoint=https://s3.example&path-style=1&profile=ops&capacity=10GiB')
  t.same(where.kind === 's3' && where.s3, { bucket: 'my-bucket', prefix: 'vol/', endpoint: 'https://s3.example', pathStyle: true, profile: 'ops', capacityBytes: 10 * 1024 ** 3 })
})

t.test('bad member URLs are refused with the reason', async (t) => {
  const bad: [string, RegExp][] = [
    ['', /not a server URL/],
    ['ftp://host/x', /http:\/\/, https:\/\/ or s3:\/\//],
    ['http://host:7001/path', /HOST:PORT and nothing more/],
    ['s3://AKIA:secret@bucket/x', /carry no credentials/],
    ['s3://B/x', /not an S3 bucket name/],
    ['s3://ab/x', /not an S3 bucket name/],
    ['s3://bucket/a//b', /plain key path/],
    ['s3://bucket/x?acl=public', /unknown s3:\/\/ option "acl"/],
    ['s3://bucket/x?endpoint=localhost', /endpoint= is/],
    ['s3://bucket/x?endpoint=http://h/path', /endpoint= is http/],
    ['s3://bucket/x?path-style=yes', /path-style= is 1 or 0/],
    ['s3://bucket/x?capacity=lots', /capacity=: not a size/],
    ['s3://bucket/x?capacity=0', /more than 0/],
    ['s3://bucket/x?region=Bad_Region', /not a region/],
  ]
  for (const [url, why] of bad) t.throws(() => memberUrl(url), { name: 'ClusterConfigError', message: why }, JSON.stringify(url))
  t.ok(new ClusterConfigError('x') instanceof Error)
  const secret = (() => {
    try {
      memberUrl('s3://AKIA:topsecret@bucket/x')
    } catch (err) {
      return (err as Error).message
    }
    return ''
  })()
  t.notMatch(secret, /topsecret|AKIA/, 'the error does not echo the credentials')
})

/** An S3 endpoint that stores objects but ignores If-None-Match and If-Match (as s3rver does). */
async function storeWithoutCas(t: Test): Promise<string> {
  const objects = new Map<string, Buffer>()
  const server = createServer((req, res) => {
    const parts: Buffer[] = []
    req.on('data', (d: Buffer) => parts.push(d))
    req.on('end', () => {
      const key = req.url!.split('?')[0]!
      if (req.method === 'PUT') {
        objects.set(key, Buffer.concat(parts))
        res.writeHead(200, { etag: '"0123"' }).end()
      } else if (objects.has(key)) {
        res.writeHead(200, { etag: '"0123"', 'content-length': objects.get(key)!.length }).end(req.method === 'HEAD' ? undefined : objects.get(key))
      } else {
        res.writeHead(404, { 'content-type': 'application/xml' }).end('<?xml version="1.0"?><Error><Code>NoSuchKey</Code></Error>')
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

t.test('a store that ignores conditional writes is refused', async (t) => {
  const endpoint = await storeWithoutCas(t)
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test', AWS_REGION: 'us-east-1' })
  for (const attempt of ['first', 'second']) {
    const servers = [`s3://no-cas/vol?endpoint=${endpoint}&path-style=1`]
    const err = await Cluster.connect({ servers, user: 'u', password: 'p', replicas: 1, timeoutMs: 5000 }).then((c) => c.close(), (e: Error) => e)
    t.ok(err instanceof ClusterConnectError, `${attempt} connect fails: ${(err as Error)?.message}`)
    t.match((err as Error)?.message, /ignores conditional writes \(If-None-Match\).*compare-and-swap/, 'saying why')
  }
})

t.test('a busy store (503 SlowDown) is asked again with back-off, not marked down', async (t) => {
  let puts = 0
  const server = createServer((req, res) => {
    req.resume()
    req.on('end', () => {
      if (req.method === 'PUT' && ++puts <= 2) {
        res.writeHead(503, { 'content-type': 'application/xml' }).end('<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>')
      } else res.writeHead(200, { etag: '"0123"' }).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const client = memberClient({ url: `s3://busy/vol?endpoint=${endpoint}&path-style=1`, user: '', password: '', timeoutMs: 5000 })
  t.teardown(() => client.close())
  t.equal(await client.putBlob('a'.repeat(64), Buffer.from('x')), 'created', 'the put succeeds')
  t.equal(puts, 3, 'after two SlowDown answers')
  puts = -10 // every PUT is refused from now on: the error says so, and is a fault (try elsewhere), not "down"
  const err = await client.putBlob('b'.repeat(64), Buffer.from('y')).then(() => null, (e: unknown) => e)
  t.equal(classify(err), 'fault', `${(err as Error)?.message}`)
  t.ok(puts > -10 + 1, `asked ${puts + 10} times before giving up`)
})
