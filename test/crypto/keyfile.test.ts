// The key file: create / unwrap, wrong passphrase, rewrap, weak or absurd KDF parameters, tampering,
// versions, malformed JSON. scrypt at N=2^16 costs ~0.2 s, so the number of derivations is kept small.
import t from 'tap'
import { createDecipheriv, randomBytes, scryptSync } from 'node:crypto'
import {
  KeyFile, KeyFileError, WrongPassphraseError, counterNonces, createKeyFile, parseKeyFile, rewrapKeyFile, serializeKeyFile, unwrapMasterKey,
} from './support'
import { createKeyFileWith } from '../../src/crypto/keyfile'

const PASS = 'correct horse battery staple'

// Pinned once from this implementation, after the independent unwrap in the first test agreed.
// (master key 00..1f, salt 0x11 x 32, nonce 0..01, passphrase PASS)
const GOLDEN_WRAPPED = 'AAAAAAAAAAAAAAABP0PcZOfjI9KgQo7D+9wiYOBPGujRf9IDTyPlqofH23mBB8iAjku16X4G/RVdiZyd'
const GOLDEN_FILE = `{
  "format": "edfs-keyfile",
  "version": 1,
  "volumeId": "0123456789abcdef0123456789abcdef",
  "kdf": {
    "name": "scrypt",
    "N": 65536,
    "r": 8,
    "p": 1,
    "salt": "ERERERERERERERERERERERERERERERERERERERERERE="
  },
  "wrappedKey": "AAAAAAAAAAAAAAABP0PcZOfjI9KgQo7D+9wiYOBPGujRf9IDTyPlqofH23mBB8iAjku16X4G/RVdiZyd",
  "createdAt": "2025-01-01T00:00:00.000Z"
}
`

t.test('golden key file: independent unwrap with scryptSync and AES-256-GCM', async (t) => {
  const masterKey = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex')
  const salt = Buffer.alloc(32, 0x11)
  const { keyFile } = await createKeyFileWith(PASS, {
    masterKey, salt, volumeId: '0123456789abcdef0123456789abcdef', createdAt: '2025-01-01T00:00:00.000Z', nonces: counterNonces(1),
  })
  t.same(keyFile.kdf, { name: 'scrypt', N: 65536, r: 8, p: 1, salt: salt.toString('base64') })
  const wrapped = Buffer.from(keyFile.wrappedKey, 'base64')
  t.equal(wrapped.length, 60)
  const kek = scryptSync(PASS, salt, 32, { N: 65536, r: 8, p: 1, maxmem: 256 * 1024 * 1024 })
  const d = createDecipheriv('aes-256-gcm', kek, wrapped.subarray(0, 12))
  d.setAAD(Buffer.from(`edfs-keyfile\n1\n0123456789abcdef0123456789abcdef\nscrypt\n65536\n8\n1\n${salt.toString('base64')}`))
  d.setAuthTag(wrapped.subarray(44))
  t.same(Buffer.concat([d.update(wrapped.subarray(12, 44)), d.final()]), masterKey, 'the documented wrap opens')
  t.equal(keyFile.wrappedKey, GOLDEN_WRAPPED, 'pinned')
  t.equal(serializeKeyFile(keyFile).toString('utf8'), GOLDEN_FILE, 'serialized form (the example in docs/crypto.md)')
})

t.test('create, serialize, parse, unwrap; wrong passphrase; event loop keeps running', async (t) => {
  const { keyFile, masterKey } = await createKeyFile(PASS)
  t.equal(masterKey.length, 32)
  t.match(keyFile.volumeId, /^[0-9a-f]{32}$/)
  t.equal(keyFile.format, 'edfs-keyfile')
  t.equal(keyFile.version, 1)
  t.ok(keyFile.kdf.N >= 2 ** 16 && keyFile.kdf.r >= 8 && keyFile.kdf.p >= 1)
  t.equal(Buffer.from(keyFile.kdf.salt, 'base64').length, 32)
  t.ok(!Number.isNaN(Date.parse(keyFile.createdAt)))
  const parsed = parseKeyFile(serializeKeyFile(keyFile))
  t.same(parsed, keyFile)
  let ticks = 0
  const timer = setInterval(() => ticks++, 5)
  const unwrapped = await unwrapMasterKey(parsed, PASS)
  clearInterval(timer)
  t.same(unwrapped, masterKey)
  t.ok(ticks > 3, `timers ran during scrypt (${ticks} ticks): the event loop was not blocked`)
  const wrong = await unwrapMasterKey(parsed, PASS + '!').then(() => null, (e: unknown) => e)
  t.type(wrong, WrongPassphraseError, 'wrong passphrase')
  t.match((wrong as Error).message, /^wrong passphrase/, 'the message says so')
  // Unicode passphrases are NFC-normalized: the composed and decomposed spellings are the same passphrase.
  const uni = await createKeyFile('caf\u00e9 \u00fcber')
  t.same(await unwrapMasterKey(uni.keyFile, 'cafe\u0301 u\u0308ber'), uni.masterKey)
  await t.rejects(createKeyFile(''), RangeError, 'empty passphrase')
})

t.test('rewrap: same master key, new salt and wrap, old passphrase no longer opens it', async (t) => {
  const { keyFile, masterKey } = await createKeyFile('old passphrase')
  const next = await rewrapKeyFile(keyFile, 'old passphrase', 'new passphrase')
  t.equal(next.volumeId, keyFile.volumeId)
  t.equal(next.createdAt, keyFile.createdAt)
  t.not(next.kdf.salt, keyFile.kdf.salt)
  t.not(next.wrappedKey, keyFile.wrappedKey)
  t.same(await unwrapMasterKey(next, 'new passphrase'), masterKey)
  await t.rejects(unwrapMasterKey(next, 'old passphrase'), WrongPassphraseError)
  await t.rejects(rewrapKeyFile(keyFile, 'not it', 'x'), WrongPassphraseError)
})

t.test('weak, absurd or malformed KDF parameters are refused before any derivation', async (t) => {
  const base = parseKeyFile(Buffer.from(GOLDEN_FILE))
  const withKdf = (kdf: Record<string, unknown>): KeyFile => ({ ...base, kdf: { ...base.kdf, ...kdf } }) as KeyFile
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['N = 2^15', { N: 2 ** 15 }, /too weak/],
    ['N = 2^14', { N: 16384 }, /too weak/],
    ['r = 4', { r: 4 }, /too weak/],
    ['p = 0', { p: 0 }, /positive integer/],
    ['N not a power of two', { N: 65537 }, /power of two/],
    ['N as a string', { N: '65536' }, /positive integer/],
    ['N = 2^30', { N: 2 ** 30 }, /exceed/],
    ['r = 1000', { r: 1000 }, /exceed/],
    ['p = 1000', { p: 1000 }, /exceed/],
    ['2 GiB of memory', { N: 2 ** 21, r: 16 }, /exceed/],
    ['another KDF', { name: 'pbkdf2' }, /not supported/],
    ['salt of 16 bytes', { salt: Buffer.alloc(16).toString('base64') }, /32 bytes/],
    ['salt not base64', { salt: '!!!' }, /base64/],
  ]
  for (const [what, kdf, message] of cases) {
    const kf = withKdf(kdf)
    const err = t.throws(() => parseKeyFile(Buffer.from(JSON.stringify(kf))), KeyFileError, `${what}: parse refuses`) as Error
    t.match(err.message, message, `${what}: message`)
    await t.rejects(unwrapMasterKey(kf, PASS), KeyFileError, `${what}: unwrap refuses`)
  }
})

t.test('tampered bound fields fail the unwrap', async (t) => {
  const base = parseKeyFile(Buffer.from(GOLDEN_FILE))
  const master = await unwrapMasterKey(base, PASS)
  t.same(master, Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex'))
  const wrapped = Buffer.from(base.wrappedKey, 'base64')
  const flipped = (i: number): string => { const w = Buffer.from(wrapped); w[i]! ^= 1; return w.toString('base64') }
  const tampered: [string, KeyFile][] = [
    ['volumeId', { ...base, volumeId: 'f123456789abcdef0123456789abcdef' }],
    ['kdf.N raised (bound in the AAD)', { ...base, kdf: { ...base.kdf, N: 2 ** 17 } }],
    ['kdf.salt', { ...base, kdf: { ...base.kdf, salt: Buffer.alloc(32, 0x12).toString('base64') } }],
    ['wrappedKey nonce', { ...base, wrappedKey: flipped(0) }],
    ['wrappedKey body', { ...base, wrappedKey: flipped(20) }],
    ['wrappedKey tag', { ...base, wrappedKey: flipped(59) }],
  ]
  for (const [what, kf] of tampered) await t.rejects(unwrapMasterKey(kf, PASS), WrongPassphraseError, what)
  // createdAt is informational and not bound.
  t.same(await unwrapMasterKey({ ...base, createdAt: '2030-01-01T00:00:00.000Z' }, PASS), master)
})

t.test('format, version, malformed JSON and fields', async (t) => {
  const obj = JSON.parse(GOLDEN_FILE) as Record<string, unknown>
  const bad = (patch: Record<string, unknown>): Buffer => Buffer.from(JSON.stringify({ ...obj, ...patch }))
  const cases: [string, Buffer, RegExp][] = [
    ['version 2', bad({ version: 2 }), /version 2 is not supported/],
    ['version "1"', bad({ version: '1' }), /not supported/],
    ['other format', bad({ format: 'edfs-keyfile2' }), /format/],
    ['no volumeId', bad({ volumeId: undefined }), /volumeId/],
    ['uppercase volumeId', bad({ volumeId: '0123456789ABCDEF0123456789ABCDEF' }), /volumeId/],
    ['short wrappedKey', bad({ wrappedKey: Buffer.alloc(59).toString('base64') }), /wrappedKey must be 60 bytes/],
    ['unpadded base64 salt', bad({ kdf: { ...(obj.kdf as object), salt: (obj.kdf as { salt: string }).salt.replace(/=+$/, '') } }), /canonical base64/],
    ['base64 with whitespace', bad({ wrappedKey: ' ' + (obj.wrappedKey as string) }), /base64/],
    ['no kdf', bad({ kdf: null }), /kdf/],
    ['bad createdAt', bad({ createdAt: 'yesterday' }), /createdAt/],
    ['not JSON', Buffer.from('{"format": "edfs-keyfile",'), /not valid JSON/],
    ['empty', Buffer.alloc(0), /not valid JSON/],
    ['an array', Buffer.from('[]'), /not a JSON object/],
    ['binary', randomBytes(64), /JSON/],
  ]
  for (const [what, bytes, message] of cases) {
    const err = t.throws(() => parseKeyFile(bytes), KeyFileError, what) as Error
    t.match(err.message, message, `${what}: message`)
  }
  t.throws(() => serializeKeyFile({ ...(obj as unknown as KeyFile), version: 2 as 1 }), KeyFileError, 'serialize validates too')
  const extra = parseKeyFile(bad({ comment: 'ignored' }))
  t.notOk('comment' in extra, 'unknown extra fields are dropped')
})
