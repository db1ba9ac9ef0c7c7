// Blob round trips, ranges, listing, have, delete, and concurrent uploads against a real server.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { readdirSync } from 'node:fs'
import path from 'node:path'
import { ServerClient } from '../../src/cluster/server-client'
import { TEST_USER, startServer } from '../helpers/servers'

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

t.test('blobs', async (t) => {
  const server = await startServer(t)
  const client = new ServerClient({ url: server.url, user: TEST_USER.name, password: TEST_USER.password })
  t.teardown(() => client.close())

  await t.test('round trip of 0 B, 1 B, 4 MiB and 64 MiB, byte for byte', async (t) => {
    for (const size of [0, 1, 4 * 1024 * 1024, 64 * 1024 * 1024]) {
      const data = randomBytes(size)
      const id = sha(data)
      t.equal(await client.putBlob(id, data), 'created', `${size} B created`)
      t.equal(await client.putBlob(id, data), 'exists', `${size} B again: exists`)
      const back = await client.getBlob(id)
      t.ok(back && back.equals(data), `${size} B read back identical`)
      t.equal(await client.headBlob(id), size, `${size} B HEAD size`)
    }
  })

  await t.test('range reads', async (t) => {
    const data = randomBytes(100_000)
    const id = sha(data)
    await client.putBlob(id, data)
    t.same(await client.getBlob(id, { start: 0, end: 1 }), data.subarray(0, 1))
    t.same(await client.getBlob(id, { start: 65536, end: 65536 + 4096 }), data.subarray(65536, 65536 + 4096))
    t.same(await client.getBlob(id, { start: 99_000, end: 100_000 }), data.subarray(99_000))
    t.same(await client.getBlob(id, { start: 99_000, end: 200_000 }), data.subarray(99_000), 'end past the size is clipped')
    await t.rejects(client.getBlob(id, { start: 100_000, end: 100_010 }), { status: 416, code: 'range-not-satisfiable' })
    await t.rejects(client.getBlob(id, { start: 200_000, end: 200_010 }), { status: 416, code: 'range-not-satisfiable' })
  })

  await t.test('many range reads at once, of blobs alike in size (the server reuses their memory), each byte for byte', async (t) => {
    const blobs = Array.from({ length: 12 }, () => randomBytes(2 * 1024 * 1024))
    for (const b of blobs) await client.putBlob(sha(b), b)
    // Three passes, 12 at a time over 4 connections: answers queue behind each other on a socket
    // while the server already reads the next ones; none may show another's bytes.
    let right = 0
    for (let pass = 0; pass < 3; pass++) {
      await Promise.all(blobs.map(async (b, k) => {
        const start = (k * 4099 + pass * 7) % 1000
        const got = await client.getBlob(sha(b), { start, end: b.length - k })
        if (got?.equals(b.subarray(start, b.length - k))) right++
      }))
    }
    t.equal(right, 36, 'every answer is its own blob\'s range')
  })

  await t.test('delete, have, list', async (t) => {
    const blobs = Array.from({ length: 5 }, () => randomBytes(1000))
    const ids = blobs.map(sha)
    for (let i = 0; i < blobs.length; i++) await client.putBlob(ids[i]!, blobs[i]!)
    const absent = sha(Buffer.from('never stored'))
    t.same((await client.have([...ids, absent])).sort(), [...ids].sort())
    t.equal(await client.deleteBlob(ids[0]!), true)
    t.equal(await client.deleteBlob(ids[0]!), false, 'second delete: 404')
    t.equal(await client.getBlob(ids[0]!), null)
    t.equal(await client.headBlob(ids[0]!), null)
    // Paged listing in id order covers everything exactly once.
    const seen: string[] = []
    let after: string | undefined
    for (let pages = 0; pages < 100; pages++) {
      const page = await client.listBlobs(after, 3)
      t.ok(page.blobs.length <= 3)
      for (const b of page.blobs) t.equal(typeof b.size, 'number')
      seen.push(...page.blobs.map((b) => b.id))
      if (!page.next) break
      after = page.next
    }
    t.same(seen, [...seen].sort(), 'id order')
    t.equal(new Set(seen).size, seen.length, 'no duplicates')
    for (const id of ids.slice(1)) t.ok(seen.includes(id))
    t.notOk(seen.includes(ids[0]!))
    const stats = await client.stats()
    t.equal(stats.blobCount, seen.length, 'stats count matches the listing')
  })

  await t.test('100 concurrent uploads of distinct blobs', async (t) => {
    const blobs = Array.from({ length: 100 }, (_, i) => randomBytes(10_000 + i * 997))
    const res = await Promise.all(blobs.map((b) => client.putBlob(sha(b), b)))
    t.ok(res.every((r) => r === 'created'))
    const back = await Promise.all(blobs.map((b) => client.getBlob(sha(b))))
    t.ok(back.every((b, i) => b!.equals(blobs[i]!)), 'all read back')
  })

  await t.test('20 concurrent uploads of the same blob', async (t) => {
    const data = randomBytes(3 * 1024 * 1024)
    const id = sha(data)
    const before = await client.stats()
    const clients = Array.from({ length: 4 }, () => new ServerClient({ url: server.url, user: TEST_USER.name, password: TEST_USER.password }))
    t.teardown(() => clients.forEach((c) => c.close()))
    const res = await Promise.all(Array.from({ length: 20 }, (_, i) => clients[i % 4]!.putBlob(id, data)))
    t.equal(res.filter((r) => r === 'created').length, 1, 'exactly one created')
    t.equal(res.filter((r) => r === 'exists').length, 19)
    t.ok((await client.getBlob(id))!.equals(data))
    const after = await client.stats()
    t.equal(after.blobCount, before.blobCount + 1)
    t.equal(after.bytesStored, before.bytesStored + data.length)
    const dir = path.join(server.dataDir, 'users', TEST_USER.name, 'blobs', id.slice(0, 2))
    t.same(readdirSync(dir).filter((n) => n === id), [id], 'one file')
    t.same(readdirSync(path.join(server.dataDir, 'tmp')), [], 'no temp file left')
  })

  await t.test('traffic counters', async (t) => {
    const data = randomBytes(50_000)
    const id = sha(data)
    const s0 = await client.stats()
    await client.putBlob(id, data)
    await client.getBlob(id)
    await client.getBlob(id, { start: 0, end: 1000 })
    const s1 = await client.stats()
    t.equal(s1.bytesReceived - s0.bytesReceived, 50_000)
    t.equal(s1.bytesServed - s0.bytesServed, 51_000)
    t.ok(s1.requestsServed >= s0.requestsServed + 4)
  })

  await t.test('hash mismatch: 400 and nothing stored', async (t) => {
    const data = randomBytes(5000)
    const wrongId = sha(Buffer.from('something else'))
    await t.rejects(client.putBlob(wrongId, data), { status: 400, code: 'hash-mismatch' })
    t.equal(await client.headBlob(wrongId), null)
    t.same(readdirSync(path.join(server.dataDir, 'tmp')), [])
  })
})
