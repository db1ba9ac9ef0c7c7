// A blob's id: the SHA-256 of its stored bytes. Large blobs are hashed in the thread pool
// (WebCrypto), so a 4 MiB chunk never holds the mount daemon's event loop.
import { createHash, webcrypto } from 'node:crypto'

const INLINE_HASH_LIMIT = 256 * 1024

export async function blobId(data: Buffer): Promise<string> {
  if (data.length < INLINE_HASH_LIMIT) return createHash('sha256').update(data).digest('hex')
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', data)).toString('hex')
}
