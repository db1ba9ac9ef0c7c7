// Metadata sealing: format (golden vector), round trips, tampering, context binding.
import t from 'tap'
import { createCipheriv, randomBytes } from 'node:crypto'
import { IntegrityError, META_FORMAT_VERSION, META_OVERHEAD, counterNonces, openMeta, pattern, sealMeta } from './support'
import { sealMetaWith } from '../../src/crypto/meta'

// Pinned once from this implementation, after the independent construction in the golden test agreed.
const GOLDEN = '01000000000000000000000007d8913d0d6b07bbca26041e5fb085618f1a37e5e35e1592ae2407c9531c93db967e4b2b05a318'

const key = randomBytes(32)

t.test('golden vector: version | nonce | ciphertext | tag, AAD "edfs-meta" | version | context', async (t) => {
  const k = Buffer.alloc(32, 0x5a)
  const plain = Buffer.from('{"seq":1,"entries":[]}')
  const sealed = sealMetaWith(counterNonces(7), k, 'v1-0123456789abcdef0123456789abcdef', plain)
  const nonce = Buffer.alloc(12)
  nonce.writeUInt32BE(7, 8)
  const c = createCipheriv('aes-256-gcm', k, nonce)
  c.setAAD(Buffer.concat([Buffer.from('edfs-meta'), Buffer.from([1]), Buffer.from('v1-0123456789abcdef0123456789abcdef')]))
  const body = Buffer.concat([c.update(plain), c.final()])
  t.same(sealed, Buffer.concat([Buffer.from([1]), nonce, body, c.getAuthTag()]), 'matches an independent construction')
  t.equal(sealed.toString('hex'), GOLDEN, 'pinned')
  t.equal(META_FORMAT_VERSION, 1)
  t.equal(META_OVERHEAD, 29)
})

t.test('round trips', async (t) => {
  for (const len of [0, 1, 15, 16, 17, 1000, 65536, 1 << 20]) {
    const plain = randomBytes(len)
    const sealed = sealMeta(key, 'journal/3', plain)
    t.equal(sealed.length, len + 29)
    t.same(openMeta(key, 'journal/3', sealed), plain, `${len} bytes`)
  }
  // A checkpoint of ~100k files is tens of MB: one GCM unit.
  const big = pattern(24 * 1024 * 1024, 5)
  const t0 = Date.now()
  t.ok(openMeta(key, 'checkpoint/9/0', sealMeta(key, 'checkpoint/9/0', big)).equals(big), '24 MiB')
  t.comment(`24 MiB metadata seal + open: ${Date.now() - t0} ms`)
  const a = sealMeta(key, 'x', Buffer.from('same'))
  const b = sealMeta(key, 'x', Buffer.from('same'))
  t.not(a.toString('hex'), b.toString('hex'), 'fresh nonce each time')
  t.same(openMeta(key, 'ünïcødé ✓', sealMeta(key, 'ünïcødé ✓', Buffer.from('x'))), Buffer.from('x'))
})

t.test('tampering: every byte, context, key, version, length', async (t) => {
  const sealed = sealMeta(key, 'head', Buffer.from('{"format":"edfs-volume","seq":42}'))
  let refused = 0
  for (let i = 0; i < sealed.length; i++) {
    const bad = Buffer.from(sealed)
    bad[i]! ^= 0x01
    try {
      openMeta(key, 'head', bad)
      t.fail(`byte ${i} not detected`)
    } catch (err) {
      if (err instanceof IntegrityError) refused++
    }
  }
  t.equal(refused, sealed.length, 'every flipped byte refused')
  t.throws(() => openMeta(key, 'lease', sealed), IntegrityError, 'other context')
  t.throws(() => openMeta(key, 'head ', sealed), IntegrityError, 'context with a trailing space')
  t.throws(() => openMeta(randomBytes(32), 'head', sealed), IntegrityError, 'other key')
  for (const cut of [0, 1, 12, 28, sealed.length - 1]) t.throws(() => openMeta(key, 'head', sealed.subarray(0, cut)), IntegrityError, `cut to ${cut}`)
  t.throws(() => openMeta(key, 'head', Buffer.concat([sealed, Buffer.alloc(1)])), IntegrityError, 'extended')
  const v2 = Buffer.from(sealed)
  v2[0] = 2
  const err = t.throws(() => openMeta(key, 'head', v2), IntegrityError) as Error
  t.match(err.message, /unknown format version 2/)
  const short = t.throws(() => openMeta(key, 'head', Buffer.alloc(5)), IntegrityError) as Error
  t.match(short.message, /too short/)
  t.throws(() => sealMeta(Buffer.alloc(31), 'head', Buffer.alloc(1)), RangeError)
})
