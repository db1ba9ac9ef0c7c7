// Shared helpers for the crypto tests (not a test file itself).
export * from '../../src/crypto'
/** src/protocol/names.ts RECORD_NAME, restated so the crypto tests stay independent of the protocol module. */
export const RECORD_NAME_FOR_TEST = /^[a-z0-9][a-z0-9._-]{0,127}$/

/** A nonce source that yields 12-byte big-endian counters from `start`: deterministic seals for golden vectors. */
export function counterNonces(start = 1): (out: Buffer, offset: number) => void {
  let n = start
  return (out, offset) => {
    out.fill(0, offset, offset + 12)
    out.writeUInt32BE(n++, offset + 8)
  }
}

/** Deterministic pseudo-random bytes (xorshift32), so failures reproduce. */
export function pattern(length: number, seed = 1): Buffer {
  const buf = Buffer.allocUnsafe(length)
  let x = seed >>> 0 || 1
  for (let i = 0; i < length; i++) {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    buf[i] = x & 0xff
  }
  return buf
}

/** A small seeded PRNG for property tests. */
export function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1
  return (n) => {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    return x % n
  }
}
