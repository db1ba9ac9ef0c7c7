// AES-256-GCM, the one primitive: 32-byte key, 12-byte nonce, 16-byte tag. Callers lay out their
// own formats; this module only seals and opens one unit into / out of a caller-given place.
import { createCipheriv, createDecipheriv } from 'node:crypto'
import { IntegrityError } from './errors'
import { fillRandom } from './random'

export const KEY_BYTES = 32
export const NONCE_BYTES = 12
export const TAG_BYTES = 16
const ALGORITHM = 'aes-256-gcm'

/** Writes a fresh nonce into `out` at `offset` (NONCE_BYTES bytes). Tests inject fixed ones. */
export type NonceSource = (out: Buffer, offset: number) => void

/** Random nonces (from the pooled CSPRNG, random.ts). */
export const randomNonces: NonceSource = (out, offset) => fillRandom(out, offset, NONCE_BYTES)

export function checkKey(key: Buffer, what = 'key'): void {
  if (!Buffer.isBuffer(key) || key.length !== KEY_BYTES) {
    throw new RangeError(`${what} must be a ${KEY_BYTES}-byte Buffer`)
  }
}

/**
 * Seals `plain` into `out` at `at` as nonce | ciphertext | tag (plain.length + 28 bytes), with a
 * nonce from `nonces`. Returns the offset just after the tag.
 */
export function sealInto(key: Buffer, aad: Buffer, plain: Buffer, out: Buffer, at: number, nonces: NonceSource): number {
  nonces(out, at)
  const nonce = out.subarray(at, at + NONCE_BYTES)
  const cipher = createCipheriv(ALGORITHM, key, nonce, { authTagLength: TAG_BYTES })
  cipher.setAAD(aad)
  let pos = at + NONCE_BYTES
  if (plain.length > 0) pos += cipher.update(plain).copy(out, pos)
  pos += cipher.final().copy(out, pos) // always empty for GCM
  pos += cipher.getAuthTag().copy(out, pos)
  return pos
}

/**
 * Opens one nonce | ciphertext | tag unit (`sealed`, exactly that long) into `out` at `at`.
 * Throws IntegrityError(`what` ...) when the tag does not verify (nothing is written then).
 */
export function openInto(key: Buffer, aad: Buffer, sealed: Buffer, out: Buffer, at: number, what: string): number {
  return at + open(key, aad, sealed, what).copy(out, at)
}

/**
 * Opens one nonce | ciphertext | tag unit into a new buffer (no copy: what a one-block read wants).
 * Throws IntegrityError(`what` ...) when the tag does not verify, and no plaintext is returned.
 */
export function open(key: Buffer, aad: Buffer, sealed: Buffer, what: string): Buffer {
  if (sealed.length < NONCE_BYTES + TAG_BYTES) throw new IntegrityError(`${what}: ${sealed.length} bytes is too short to be sealed`)
  const nonce = sealed.subarray(0, NONCE_BYTES)
  const body = sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)
  const tag = sealed.subarray(sealed.length - TAG_BYTES)
  const decipher = createDecipheriv(ALGORITHM, key, nonce, { authTagLength: TAG_BYTES })
  decipher.setAAD(aad)
  decipher.setAuthTag(tag)
  const plain = body.length > 0 ? decipher.update(body) : Buffer.alloc(0)
  try {
    decipher.final() // always empty for GCM; throws when the tag does not verify
  } catch {
    plain.fill(0)
    throw new IntegrityError(`${what}: authentication failed (altered, truncated, moved, or sealed under another key)`)
  }
  return plain
}
