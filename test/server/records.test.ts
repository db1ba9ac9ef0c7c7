// Records: versions, compare-and-swap under racing writers, delete, size limit.
import t from 'tap'
import { ServerClient } from '../../src/cluster/server-client'
import { TEST_USER, startServer } from '../helpers/servers'

t.test('records', async (t) => {
  const server = await startServer(t)
  const client = new ServerClient({ url: server.url, user: TEST_USER.name, password: TEST_USER.password })
  t.teardown(() => client.close())

  await t.test('create, read, replace, delete', async (t) => {
    t.equal(await client.getRecord('head'), null)
    t.equal(await client.putRecord('head', 0, Buffer.from('one')), 1)
    t.same(await client.getRecord('head'), { version: 1, value: Buffer.from('one') })
    t.equal(await client.putRecord('head', 1, Buffer.from('two')), 2)
    t.same(await client.getRecord('head'), { version: 2, value: Buffer.from('two') })
    t.equal(await client.putRecord('empty', 0, Buffer.alloc(0)), 1, 'an empty value is fine')
    t.same(await client.getRecord('empty'), { version: 1, value: Buffer.alloc(0) })
    await t.rejects(client.deleteRecord('head', 1), { status: 409, code: 'version-conflict', body: { version: 2 } })
    await client.deleteRecord('head', 2)
    t.equal(await client.getRecord('head'), null)
    await t.rejects(client.deleteRecord('head', 2), { status: 404, code: 'not-found' })
    t.equal(await client.putRecord('head', 0, Buffer.from('again')), 1, 'recreated from 0')
  })

  await t.test('stale CAS: 409 with the current version, value unchanged', async (t) => {
    t.equal(await client.putRecord('lease', 0, Buffer.from('mine')), 1)
    await t.rejects(client.putRecord('lease', 0, Buffer.from('theirs')), { status: 409, code: 'version-conflict', body: { version: 1 } })
    await t.rejects(client.putRecord('lease', 5, Buffer.from('theirs')), { status: 409, code: 'version-conflict', body: { version: 1 } })
    t.same(await client.getRecord('lease'), { version: 1, value: Buffer.from('mine') })
    await t.rejects(client.putRecord('absent', 3, Buffer.from('x')), { status: 409, code: 'version-conflict', body: { version: 0 } })
    t.equal(await client.getRecord('absent'), null)
  })

  await t.test('10 racing writers: exactly one wins per version', async (t) => {
    const clients = Array.from({ length: 10 }, () => new ServerClient({ url: server.url, user: TEST_USER.name, password: TEST_USER.password }))
    t.teardown(() => clients.forEach((c) => c.close()))
    await Promise.all(clients.map((c) => c.login()))
    let version = 0
    for (let round = 0; round < 5; round++) {
      const results = await Promise.allSettled(clients.map((c, i) => c.putRecord('race', version, Buffer.from(`round ${round} writer ${i}`))))
      const winners = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []))
      t.equal(winners.length, 1, `round ${round}: one winner`)
      for (const r of results) {
        if (r.status === 'fulfilled') t.equal(r.value, version + 1)
        else t.match(r.reason, { status: 409, code: 'version-conflict', body: { version: version + 1 } })
      }
      version++
      t.same(await client.getRecord('race'), { version, value: Buffer.from(`round ${round} writer ${winners[0]}`) }, 'the winner\'s value')
    }
  })
})
