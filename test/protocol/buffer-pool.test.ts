// Recycled memory: what is given back is handed out again (no new memory), within its bounds, and
// memory it never handed out is never taken in.
import t from 'tap'
import { BufferPool } from '../../src/protocol'

t.test('a buffer given back serves the next request of about its size', async (t) => {
  const pool = new BufferPool(1 << 20, 4 << 20)
  const a = pool.take(100_000)
  t.equal(a.length, 100_000)
  pool.give(a)
  t.ok(pool.bytes >= 100_000, 'kept')
  const b = pool.take(90_000)
  t.equal(b.buffer, a.buffer, 'the same memory again')
  t.equal(b.length, 90_000)
  t.equal(pool.bytes, 0, 'no longer spare while taken')
  const c = pool.take(1_000)
  t.not(c.buffer, a.buffer, 'taken memory is never handed out twice')
  pool.give(b)
  t.not(pool.take(1_000).buffer, b.buffer, 'a spare much larger than asked for is left for a larger request')
  t.equal(pool.take(100_000).buffer, b.buffer)
})

t.test('bounds: large requests and spare memory beyond the limit are not pooled', async (t) => {
  const pool = new BufferPool(1 << 20, 3 << 20)
  const big = pool.take((1 << 20) + 1)
  pool.give(big)
  t.equal(pool.bytes, 0, 'a request above maxLength had memory of its own')
  const taken = [1, 2, 3, 4].map(() => pool.take(1 << 20))
  for (const b of taken) pool.give(b)
  t.equal(pool.bytes, 3 << 20, 'at most maxSpareBytes kept')
  t.equal(pool.take(0).length, 0)
})

t.test('when the spares are full, the oldest make room for what is given back now', async (t) => {
  const pool = new BufferPool(1 << 20, 1 << 20)
  const small = Array.from({ length: 8 }, () => pool.take(100_000)) // 8 x 128 KiB: the whole budget
  for (const b of small) pool.give(b)
  t.equal(pool.bytes, 1 << 20)
  const big = pool.take(900_000)
  pool.give(big)
  t.ok(pool.bytes <= 1 << 20, 'still within the budget')
  t.equal(pool.take(900_000).buffer, big.buffer, 'a size asked for now is kept, not turned away by older spares')
  t.equal(pool.take(100_000).buffer, small[7]!.buffer, 'the newest of the older spares are still there')
})

t.test('memory from elsewhere is ignored; a double give is a bug it reports', async (t) => {
  const pool = new BufferPool(1 << 20, 4 << 20)
  pool.give(Buffer.alloc(65536))
  pool.give(Buffer.allocUnsafe(100))
  t.equal(pool.bytes, 0)
  const a = pool.take(4096)
  pool.give(a)
  t.throws(() => pool.give(a), /given back twice/)
})
