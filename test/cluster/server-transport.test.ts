// Both transports (node:http, and undici for long-lived processes) against servers that answer
// well and badly: what reaches the client, and which error a failure becomes for the pool.
import t from 'tap'
import type { Test } from 'tap'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { ServerTransport, TimeoutError, UnreachableError } from '../../src/cluster/server-transport'
import { BufferPool } from '../../src/protocol'

const BIG = randomBytes(4 * 1024 * 1024 + 13)

async function listen(server: net.Server, t: Test): Promise<URL> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise<void>((resolve) => {
    if (server instanceof http.Server) server.closeAllConnections()
    server.close(() => resolve())
  }))
  return new URL(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}`)
}

/** A server with one answer per path. */
function fakeServer(): http.Server {
  return http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (d: Buffer) => chunks.push(d))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      switch (req.url) {
        case '/big':
          res.writeHead(200, { 'content-length': BIG.length }).end(req.method === 'HEAD' ? undefined : BIG)
          return
        case '/chunked':
          res.writeHead(200)
          res.write(BIG.subarray(0, 1000))
          res.end(BIG.subarray(1000, 5000))
          return
        case '/echo':
          res.writeHead(201, { 'content-length': body.length, 'x-seen-type': String(req.headers['content-type']) }).end(body)
          return
        case '/short':
          res.writeHead(200, { 'content-length': 1000 })
          res.write(BIG.subarray(0, 500), () => res.socket?.destroy())
          return
        case '/gone': {
          const error = JSON.stringify({ error: 'not-found', message: 'no such blob' })
          res.writeHead(404, { 'content-length': Buffer.byteLength(error) }).end(error)
          return
        }
        default:
          res.writeHead(404, { 'content-length': 0 }).end()
      }
    })
  })
}

for (const undici of [false, true]) {
  t.test(undici ? 'undici' : 'node:http', async (t) => {
    const url = await listen(fakeServer(), t)
    const transport = new ServerTransport(url, { timeoutMs: 2000, maxSockets: 4, undici })
    t.teardown(() => transport.close())
    const pooled = { fresh: false, timeoutMs: 2000 }

    await t.test('answers come back whole', async (t) => {
      const big = await transport.send('GET', '/big', undefined, {}, pooled)
      t.equal(big.status, 200)
      t.ok(big.body.equals(BIG), 'a 4 MiB body, byte for byte')
      const chunked = await transport.send('GET', '/chunked', undefined, {}, pooled)
      t.ok(chunked.body.equals(BIG.subarray(0, 5000)), 'a body without a length')
      const head = await transport.send('HEAD', '/big', undefined, {}, pooled)
      t.equal(Number(head.headers['content-length']), BIG.length, 'HEAD: the length, no body')
      t.equal(head.body.length, 0)
      const echo = await transport.send('PUT', '/echo', Buffer.from('abc'), {}, pooled)
      t.same([echo.status, echo.body.toString(), echo.headers['x-seen-type']], [201, 'abc', 'application/octet-stream'], 'a small upload')
      const json = await transport.send('POST', '/echo', '{"a":1}', {}, pooled)
      t.equal(json.headers['x-seen-type'], 'application/json', 'a string body is JSON')
      const up = await transport.send('PUT', '/echo', BIG, {}, pooled)
      t.ok(up.body.equals(BIG), 'a 4 MiB upload (100-continue)')
      const probe = await transport.send('GET', '/big', undefined, { connection: 'close' }, { fresh: true, timeoutMs: 2000 })
      t.ok(probe.body.equals(BIG), 'on a connection of its own')
      t.equal((await transport.send('GET', '/nothing', undefined, {}, pooled)).status, 404, 'a 404 is an answer')
      const undiciLoaded = Object.keys(require.cache).some((f) => f.includes(`${path.sep}undici${path.sep}`))
      if (undici) t.ok(undiciLoaded, 'pooled requests went through undici')
    })

    await t.test('a body asked into recycled memory lands there; an error answer does not', async (t) => {
      const into = new BufferPool(8 << 20, 16 << 20)
      const first = await transport.send('GET', '/big', undefined, {}, { ...pooled, into })
      t.ok(first.body.equals(BIG))
      into.give(first.body)
      const again = await transport.send('GET', '/big', undefined, {}, { ...pooled, into })
      t.ok(again.body.equals(BIG), 'byte for byte')
      t.equal(again.body.buffer, first.body.buffer, 'the memory given back took the next answer')
      into.give(again.body)
      const missing = await transport.send('GET', '/gone', undefined, {}, { ...pooled, into })
      t.same([missing.status, JSON.parse(missing.body.toString()).error], [404, 'not-found'])
      t.equal(into.bytes, again.body.buffer.byteLength, 'the spare stays spare: a 404 body does not take it')
    })

    await t.test('an answer longer than asked for is refused, never allocated; an error answer is not held to it', async (t) => {
      await t.rejects(transport.send('GET', '/big', undefined, {}, { ...pooled, maxBody: 1000 }), /an answer of 4194317 bytes to a request for at most 1000/, 'a length claimed')
      await t.rejects(transport.send('GET', '/chunked', undefined, {}, { ...pooled, maxBody: 1000 }), /an answer of \d+ bytes to a request for at most 1000/, 'sent without a length')
      const exact = await transport.send('GET', '/chunked', undefined, {}, { ...pooled, maxBody: 5000 })
      t.ok(exact.body.equals(BIG.subarray(0, 5000)), 'as long as asked for: whole')
      const gone = await transport.send('GET', '/gone', undefined, {}, { ...pooled, maxBody: 5 })
      t.equal(gone.status, 404, 'an error answer longer than the range still comes back as the error it is')
    })

    await t.test('a torn answer is an error, never a short body', async (t) => {
      await t.rejects(transport.send('GET', '/short', undefined, {}, pooled))
    })
  })

  t.test(`${undici ? 'undici' : 'node:http'}: failures the pool sorts`, async (t) => {
    const closed = net.createServer()
    const refusedUrl = await listen(closed, t)
    await new Promise<void>((resolve) => closed.close(() => resolve()))
    const refused = new ServerTransport(refusedUrl, { timeoutMs: 2000, maxSockets: 2, undici })
    t.teardown(() => refused.close())
    const err = await refused.send('GET', '/x', undefined, {}, { fresh: false, timeoutMs: 2000 }).catch((e: unknown) => e)
    t.ok(err instanceof UnreachableError, 'nobody listening: unreachable')
    t.equal(((err as UnreachableError).cause as NodeJS.ErrnoException).code, 'ECONNREFUSED', 'with the cause')

    const silent = net.createServer((socket) => socket.on('data', () => undefined)) // reads, never answers
    const silentUrl = await listen(silent, t)
    const hung = new ServerTransport(silentUrl, { timeoutMs: 300, maxSockets: 2, undici })
    t.teardown(() => hung.close())
    const t0 = performance.now()
    const late = await hung.send('GET', '/x', undefined, {}, { fresh: false, timeoutMs: 300 }).catch((e: unknown) => e)
    t.ok(late instanceof TimeoutError, 'a server that never answers: timeout')
    t.ok(performance.now() - t0 < 5000, 'within about the limit')
    silent.close()
  })
}
