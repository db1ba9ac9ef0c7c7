// Sub-keys of a volume, derived from its master key with HKDF-SHA256, and the opaque names derived
// from the names key. Nothing that authenticates to a server is derived from here.
import { createHmac, hkdfSync } from 'node:crypto'
import { KEY_BYTES, checkKey } from './aead'

export interface VolumeKeys {
  /** Seals chunk contents (sealChunk / openChunk). */
  contents: Buffer
  /** Seals metadata: journal, checkpoints, head, lease (sealMeta / openMeta). */
  metadata: Buffer
  /** Keys the HMAC that makes opaque record names and ids (recordName, rootInodeId). */
  names: Buffer
}

/** HKDF info strings; changing one changes every key of every volume. */
export const SUBKEY_INFO = {
  contents: 'edfs/v1/contents',
  metadata: 'edfs/v1/metadata',
  names: 'edfs/v1/names',
} as const

function hkdf(masterKey: Buffer, info: string): Buffer {
  // Empty salt (RFC 5869: HashLen zero bytes): the master key is already uniformly random.
  return Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), info, KEY_BYTES))
}

/** The volume's three sub-keys (HKDF-SHA256 of the 32-byte master key). */
export function deriveVolumeKeys(masterKey: Buffer): VolumeKeys {
  checkKey(masterKey, 'master key')
  return {
    contents: hkdf(masterKey, SUBKEY_INFO.contents),
    metadata: hkdf(masterKey, SUBKEY_INFO.metadata),
    names: hkdf(masterKey, SUBKEY_INFO.names),
  }
}

const hmacHex = (key: Buffer, data: string): string => createHmac('sha256', key).update(data, 'utf8').digest('hex')

/**
 * A stable, opaque record name for `purpose` (e.g. 'head', 'lease'): 'v1-' + 32 hex digits of
 * HMAC-SHA256(namesKey, 'record:' + purpose). Satisfies src/protocol/names.ts RECORD_NAME.
 */
export function recordName(namesKey: Buffer, purpose: string): string {
  checkKey(namesKey, 'names key')
  if (typeof purpose !== 'string' || purpose.length === 0) throw new RangeError('record purpose must be a non-empty string')
  return 'v1-' + hmacHex(namesKey, 'record:' + purpose).slice(0, 32)
}

/** The root directory's inode id: 32 hex digits of HMAC-SHA256(namesKey, 'root'). */
export function rootInodeId(namesKey: Buffer): string {
  checkKey(namesKey, 'names key')
  return hmacHex(namesKey, 'root').slice(0, 32)
}
