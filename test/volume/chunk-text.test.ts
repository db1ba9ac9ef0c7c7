// A chunk's plaintext kept as its blocks: every range copied out or sliced is the same bytes as
// from one buffer, at every boundary.
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { BLOCK_SIZE } from '../../src/crypto'
import { ChunkText } from '../../src/volume/chunk-text'

const B = BLOCK_SIZE

function blocksOf(plain: Buffer): Buffer[] {
  const out: Buffer[] = []
  for (let at = 0; at < plain.length || out.length === 0; at += B) out.push(Buffer.from(plain.subarray(at, at + B)))
  return out
}

t.test('copyTo and slice match one buffer at and around every block boundary', async (t) => {
  for (const len of [0, 1, B - 1, B, B + 1, 3 * B, 3 * B + 17]) {
    const plain = randomBytes(len)
    const text = ChunkText.blocks(blocksOf(plain))
    t.equal(text.length, len)
    const points = new Set([0, 1, len])
    for (let k = 1; k * B <= len + 1; k++) for (const d of [-1, 0, 1]) points.add(k * B + d)
    const at = [...points].filter((p) => p >= 0 && p <= len)
    for (const start of at) for (const end of at) {
      if (end < start) continue
      const want = plain.subarray(start, end)
      if (!text.slice(start, end).equals(want)) t.fail(`slice [${start}, ${end}) of ${len}`)
      const out = Buffer.alloc(end - start + 3, 0xee)
      t.equal(text.copyTo(out, 2, start, end), end - start)
      if (!out.subarray(2, 2 + end - start).equals(want) || out[0] !== 0xee || out[1] !== 0xee || out.at(-1) !== 0xee) t.fail(`copyTo [${start}, ${end}) of ${len}`)
    }
  }
})

t.test('copyTo clamps like Buffer#copy: to the text and to the room in the target', async (t) => {
  const plain = randomBytes(2 * B + 5)
  const text = ChunkText.blocks(blocksOf(plain))
  const out = Buffer.alloc(10)
  t.equal(text.copyTo(out, 0, 2 * B, 3 * B), 5, 'past the end: what there is')
  t.same(out.subarray(0, 5), plain.subarray(2 * B))
  t.equal(text.copyTo(out, 4, B - 3, B + 100), 6, 'only the room left in the target')
  t.same(out.subarray(4), plain.subarray(B - 3, B + 3))
  t.equal(text.copyTo(out, 0, 5, 5), 0)
})

t.test('a slice within one block is a view, not a copy; one buffer works the same', async (t) => {
  const blocks = blocksOf(randomBytes(2 * B))
  const text = ChunkText.blocks(blocks)
  t.equal(text.slice(B + 10, B + 20).buffer, blocks[1]!.buffer)
  const one = ChunkText.of(Buffer.from('hello world'))
  t.equal(one.slice(6, 11).toString(), 'world')
  t.equal(one.slice(0, 100).toString(), 'hello world', 'end clamped')
  t.equal(ChunkText.of(Buffer.alloc(0)).slice(0, 0).length, 0)
  t.throws(() => ChunkText.blocks([Buffer.alloc(10), Buffer.alloc(10)]), /not 65536/, 'blocks must be whole but the last')
})
