// Metadata sealing (journal entries, checkpoints, the head and lease records): one AES-256-GCM unit.
//
//   sealed = version (u8, 1) | nonce (12, random) | ciphertext | tag (16)
//   AAD    = "edfs-meta" | version (u8) | context (UTF-8: the record name or the blob's purpose)
import { IntegrityError } from './errors'
import { NONCE_BYTES, NonceSource, TAG_BYTES, checkKey, openInto, randomNonces, sealInto } from './aead'

export const META_FORMAT_VERSION = 1
/** Stored bytes added to a metadata plaintext: version byte, nonce, tag. */
export const META_OVERHEAD = 1 + NONCE_BYTES + TAG_BYTES
const META_LABEL = Buffer.from('edfs-meta', 'ascii')

function metaAad(version: number, context: string): Buffer {
  if (typeof context !== 'string') throw new TypeError('metadata context must be a string')
  const ctx = Buffer.from(context, 'utf8')
  const aad = Buffer.allocUnsafe(META_LABEL.length + 1 + ctx.length)
  let p = META_LABEL.copy(aad, 0)
  p = aad.writeUInt8(version, p)
  ctx.copy(aad, p)
  return aad
}

/** sealMeta with an injected nonce source (tests only). */
export function sealMetaWith(nonces: NonceSource, key: Buffer, context: string, plain: Buffer): Buffer {
  checkKey(key, 'metadata key')
  const aad = metaAad(META_FORMAT_VERSION, context)
  const out = Buffer.allocUnsafe(plain.length + META_OVERHEAD)
  out.writeUInt8(META_FORMAT_VERSION, 0)
  sealInto(key, aad, plain, out, 1, nonces)
  return out
}

/** Seals a metadata value; `context` (a record name or blob purpose) must be given again to open it. */
export function sealMeta(key: Buffer, context: string, plain: Buffer): Buffer {
  return sealMetaWith(randomNonces, key, context, plain)
}

/** Opens a sealed metadata value; IntegrityError on any change, other context, or other key. */
export function openMeta(key: Buffer, context: string, sealed: Buffer): Buffer {
  checkKey(key, 'metadata key')
  const what = `metadata '${context}'`
  if (sealed.length < META_OVERHEAD) throw new IntegrityError(`${what}: ${sealed.length} bytes is too short (at least ${META_OVERHEAD})`)
  const version = sealed[0]!
  if (version !== META_FORMAT_VERSION) throw new IntegrityError(`${what}: unknown format version ${version}`)
  const out = Buffer.allocUnsafe(sealed.length - META_OVERHEAD)
  try {
    openInto(key, metaAad(version, context), sealed.subarray(1), out, 0, what)
  } catch (err) {
    out.fill(0)
    throw err
  }
  return out
}
