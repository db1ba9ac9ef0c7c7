// Bit rot on demand: one bit of a stored copy flipped in place (same size and name: only a hash
// finds it).
import { open } from 'node:fs/promises'
import path from 'node:path'
import { RunningServer, TEST_USER } from './servers'

/** Where a server keeps one of a user's blobs (docs/protocol.md, on-disk layout). */
export function blobFile(server: RunningServer, id: string, user = TEST_USER.name): string {
  return path.join(server.dataDir, 'users', user, 'blobs', id.slice(0, 2), id)
}

export async function flipBit(server: RunningServer, id: string, at = 0): Promise<void> {
  const fh = await open(blobFile(server, id), 'r+')
  try {
    const b = Buffer.alloc(1)
    await fh.read(b, 0, 1, at)
    b[0] ^= 0x01
    await fh.write(b, 0, 1, at)
  } finally {
    await fh.close()
  }
}
