// Two users on one server: neither can read, see, list, overwrite or delete the other's data, and
// another user's blob answers exactly like an absent one.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { ServerClient } from '../../src/cluster/server-client'
import { TEST_USER, startServer } from '../helpers/servers'
import { login, signed } from './raw'

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const BOB = { name: 'bob', password: 'another long password' }

t.test('isolation between users', async (t) => {
  const server = await startServer(t, { users: [TEST_USER, BOB] })
  const alice = new ServerClient({ url: server.url, user: TEST_USER.name, password: TEST_USER.password })
  const bob = new ServerClient({ url: server.url, user: BOB.name, password: BOB.password })
  t.teardown(() => {
    alice.close()
    bob.close()
  })
  const data = randomBytes(10_000)
  const id = sha(data)
  const absent = sha(randomBytes(10))
  await alice.putBlob(id, data)
  await alice.putRecord('head', 0, Buffer.from('alice head'))

  t.equal(await bob.getBlob(id), null, 'read')
  t.equal(await bob.getBlob(id, { start: 0, end: 10 }), null, 'range read')
  t.equal(await bob.headBlob(id), null, 'head')
  t.same(await bob.have([id]), [], 'have')
  t.same((await bob.listBlobs()).blobs, [], 'list')
  t.equal(await bob.deleteBlob(id), false, 'delete')
  t.equal(await bob.getRecord('head'), null, 'record read')
  await t.rejects(bob.deleteRecord('head', 1), { status: 404, code: 'not-found' }, 'record delete')
  await t.rejects(bob.putRecord('head', 1, Buffer.from('bob')), { status: 409, code: 'version-conflict', body: { version: 0 } }, 'record overwrite')
  t.equal((await bob.stats()).blobCount, 0, 'stats')

  // The exact same answer for another user's blob and an absent one (no existence leak).
  const sb = await login(server.url, BOB.name, BOB.password)
  for (const method of ['GET', 'HEAD', 'DELETE']) {
    const other = await signed(sb, method, `/v1/blobs/${id}`)
    const none = await signed(sb, method, `/v1/blobs/${absent}`)
    t.equal(other.status, 404, `${method}: 404`)
    t.equal(other.status, none.status)
    t.same(other.body, none.body, `${method}: same body`)
  }

  // Bob storing "the same" blob gets his own copy; a different body under Alice's id is refused.
  await t.rejects(bob.putBlob(id, randomBytes(10_000)), { status: 400, code: 'hash-mismatch' }, 'overwrite with other bytes')
  t.equal(await bob.putBlob(id, data), 'created', 'bob\'s own copy')
  t.equal(await bob.deleteBlob(id), true)
  t.same(await alice.getBlob(id), data, 'alice still has hers')
  t.equal(await bob.putRecord('head', 0, Buffer.from('bob head')), 1)
  t.same(await alice.getRecord('head'), { version: 1, value: Buffer.from('alice head') }, 'alice\'s record untouched')
  t.same(await bob.getRecord('head'), { version: 1, value: Buffer.from('bob head') })
  t.same((await alice.listBlobs()).blobs.map((b) => b.id), [id])
  t.equal((await alice.stats()).blobCount, 1)

  // A session of one user cannot be used with the other user's name: sessions carry the user.
  const sa = await login(server.url, TEST_USER.name, TEST_USER.password)
  const stolen = await signed({ ...sa, key: sb.key }, 'GET', `/v1/blobs/${id}`)
  t.equal(stolen.status, 401, 'alice\'s session id with bob\'s key: refused')
})
