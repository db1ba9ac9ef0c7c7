// Random bytes for nonces, chunk salts and inode ids, taken from a pool the CSPRNG refills 4 KiB at
// a time (as node's randomUUID does): a randomBytes call per 64 KiB block cost ~12 us, and one per
// new inode was ~2 % of the daemon's CPU in a cp -r of a source tree. Each pool byte is handed out once.
import { randomFillSync } from 'node:crypto'

const pool = Buffer.alloc(4096)
let used = pool.length

/** Writes `n` (at most 4096) fresh random bytes into `out` at `offset`. */
export function fillRandom(out: Buffer, offset: number, n: number): void {
  if (n > pool.length) throw new RangeError(`at most ${pool.length} random bytes at a time`)
  if (used + n > pool.length) {
    randomFillSync(pool)
    used = 0
  }
  pool.copy(out, offset, used, used + n)
  used += n
}

/** `n` fresh random bytes in a new buffer. */
export function randomBuffer(n: number): Buffer {
  const out = Buffer.allocUnsafe(n)
  fillRandom(out, 0, n)
  return out
}
