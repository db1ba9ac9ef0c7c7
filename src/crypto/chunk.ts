// Chunk sealing: a chunk is a run of fixed-size AEAD blocks with no header, so a plaintext byte
// range maps to a byte range of the stored blob (Range reads fetch only the blocks they need).
//
//   block i  = nonce (12, random) | AES-256-GCM(plaintext[i*BLOCK_SIZE ..+BLOCK_SIZE]) | tag (16)
//   AAD of i = "edfs-chunk" | 0x01 | fileId (16) | chunk index (u64 BE) | i (u32 BE) | last (u8: 1 on the last block)
//   salted (format 2, metadata format 3 on):
//   AAD of i = "edfs-chunk" | 0x02 | fileId (16) | chunk index (u64 BE) | salt (8) | i (u32 BE) | last (u8)
//
// The salt is random per sealing and recorded in the ref that names the blob, so a block of one
// sealing never opens as part of another (an older version of the same chunk or slice, served by
// a server in its place, fails its tag even on a Range read, where no blob hash is checked).
//
// A chunk of L plaintext bytes has max(1, ceil(L / BLOCK_SIZE)) blocks; a 0-byte chunk is one block
// with empty plaintext. docs/crypto.md has the full format.
import { IntegrityError } from './errors'
import { NONCE_BYTES, NonceSource, TAG_BYTES, checkKey, open, randomNonces, sealInto } from './aead'

/** Plaintext bytes per AEAD block inside a chunk. */
export const BLOCK_SIZE = 65536
/** Per-block overhead: 12-byte nonce + 16-byte tag. */
export const BLOCK_OVERHEAD = NONCE_BYTES + TAG_BYTES
/** Stored bytes of a full block. */
export const SEALED_BLOCK_SIZE = BLOCK_SIZE + BLOCK_OVERHEAD
export const CHUNK_FORMAT_VERSION = 1
/** Blocks whose AAD binds a per-sealing salt. */
export const SALTED_CHUNK_FORMAT_VERSION = 2
export const FILE_ID_BYTES = 16
export const CHUNK_SALT_BYTES = 8
/** Largest block count the u32 block index allows (a 256 TiB chunk; far beyond any real chunk size). */
const MAX_BLOCKS = 2 ** 32

const CHUNK_LABEL = Buffer.from('edfs-chunk', 'ascii')
const AAD_BYTES = CHUNK_LABEL.length + 1 + FILE_ID_BYTES + 8 + 4 + 1

function checkPlainLength(n: number, what = 'plainLength'): void {
  if (!Number.isSafeInteger(n) || n < 0 || n > (MAX_BLOCKS - 1) * BLOCK_SIZE) throw new RangeError(`${what} must be an integer >= 0, got ${n}`)
}

function checkChunk(key: Buffer, fileId: Buffer, index: number, salt: Buffer | undefined): void {
  checkKey(key, 'chunk key')
  if (!Buffer.isBuffer(fileId) || fileId.length !== FILE_ID_BYTES) throw new RangeError(`fileId must be a ${FILE_ID_BYTES}-byte Buffer`)
  if (!Number.isSafeInteger(index) || index < 0) throw new RangeError(`chunk index must be an integer >= 0, got ${index}`)
  if (salt !== undefined && (!Buffer.isBuffer(salt) || salt.length !== CHUNK_SALT_BYTES)) throw new RangeError(`a chunk salt is ${CHUNK_SALT_BYTES} bytes`)
}

/** The AAD template of one sealing; blockAad() fills in the block index and last flag (its last 5 bytes). */
function chunkAad(fileId: Buffer, index: number, salt: Buffer | undefined): Buffer {
  const aad = Buffer.alloc(AAD_BYTES + (salt ? CHUNK_SALT_BYTES : 0))
  let p = CHUNK_LABEL.copy(aad, 0)
  p = aad.writeUInt8(salt ? SALTED_CHUNK_FORMAT_VERSION : CHUNK_FORMAT_VERSION, p)
  p += fileId.copy(aad, p)
  p = aad.writeBigUInt64BE(BigInt(index), p)
  if (salt) salt.copy(aad, p)
  return aad
}

function blockAad(aad: Buffer, block: number, last: boolean): Buffer {
  aad.writeUInt32BE(block, aad.length - 5)
  aad.writeUInt8(last ? 1 : 0, aad.length - 1)
  return aad
}

/** Number of blocks of a chunk of `plainLength` bytes (at least 1). */
export function blockCount(plainLength: number): number {
  checkPlainLength(plainLength)
  return plainLength === 0 ? 1 : Math.ceil(plainLength / BLOCK_SIZE)
}

/** Plaintext bytes in block `block` of a chunk of `plainLength` bytes. */
function blockPlainSize(plainLength: number, block: number): number {
  return Math.min(BLOCK_SIZE, plainLength - block * BLOCK_SIZE)
}

/** Stored size of a chunk of `plainLength` plaintext bytes. */
export function sealedLength(plainLength: number): number {
  return plainLength + blockCount(plainLength) * BLOCK_OVERHEAD
}

/** Plaintext size of a sealed chunk of `sealedLength` bytes; IntegrityError when no chunk has that size. */
export function plainLength(sealedLength: number): number {
  if (!Number.isSafeInteger(sealedLength) || sealedLength < BLOCK_OVERHEAD) {
    throw new IntegrityError(`a sealed chunk cannot be ${sealedLength} bytes long (at least ${BLOCK_OVERHEAD})`)
  }
  const blocks = Math.ceil(sealedLength / SEALED_BLOCK_SIZE)
  const lastSealed = sealedLength - (blocks - 1) * SEALED_BLOCK_SIZE
  // Only a 0-byte chunk has an empty block; a longer chunk's last block holds >= 1 byte.
  if (blocks > 1 && lastSealed <= BLOCK_OVERHEAD) {
    throw new IntegrityError(`a sealed chunk cannot be ${sealedLength} bytes long (it would end in an empty block)`)
  }
  if (blocks > MAX_BLOCKS) throw new IntegrityError(`a sealed chunk cannot be ${sealedLength} bytes long (too many blocks)`)
  return sealedLength - blocks * BLOCK_OVERHEAD
}

/** sealChunk with an injected nonce source (tests pin nonces; the public API is always random). */
export function sealChunkWith(nonces: NonceSource, key: Buffer, fileId: Buffer, index: number, plain: Buffer, salt?: Buffer): Buffer {
  checkChunk(key, fileId, index, salt)
  const n = blockCount(plain.length)
  const out = Buffer.allocUnsafe(plain.length + n * BLOCK_OVERHEAD)
  const aad = chunkAad(fileId, index, salt)
  let pos = 0
  for (let b = 0; b < n; b++) {
    const start = b * BLOCK_SIZE
    const piece = plain.subarray(start, start + BLOCK_SIZE)
    pos = sealInto(key, blockAad(aad, b, b === n - 1), piece, out, pos, nonces)
  }
  if (pos !== out.length) throw new Error(`internal: sealed ${pos} bytes, expected ${out.length}`)
  return out
}

/**
 * Seals chunk `index` of file `fileId` (16 bytes), or a slice of it: a run of BLOCK_SIZE blocks,
 * fresh random nonces, bound to `salt` (8 bytes, random per sealing) when given.
 */
export function sealChunk(key: Buffer, fileId: Buffer, index: number, plain: Buffer, salt?: Buffer): Buffer {
  return sealChunkWith(randomNonces, key, fileId, index, plain, salt)
}

/**
 * Opens blocks firstBlock, firstBlock+1, ... laid end to end in `sealed`, of a chunk of `plainLen`
 * bytes: each block's plaintext as the decipher made it (BLOCK_SIZE bytes each but the chunk's last),
 * not copied into one buffer (a copy into fresh memory cost more than a third of the opening).
 */
function openRun(key: Buffer, fileId: Buffer, index: number, salt: Buffer | undefined, plainLen: number, firstBlock: number, sealed: Buffer, what: string): Buffer[] {
  const n = blockCount(plainLen)
  // Check every block fits the chunk's layout exactly before opening any.
  let pos = 0
  let b = firstBlock
  while (pos < sealed.length) {
    if (b >= n) throw new IntegrityError(`${what}: ${sealed.length} bytes run past the chunk's last block (${n - 1})`)
    const size = blockPlainSize(plainLen, b) + BLOCK_OVERHEAD
    if (pos + size > sealed.length) {
      throw new IntegrityError(`${what}: truncated in block ${b} (${sealed.length - pos} of ${size} bytes present)`)
    }
    pos += size
    b++
  }
  if (b === firstBlock) throw new IntegrityError(`${what}: no sealed bytes`)
  const aad = chunkAad(fileId, index, salt)
  const out: Buffer[] = []
  let at = 0
  try {
    for (let k = firstBlock; k < b; k++) {
      const size = blockPlainSize(plainLen, k) + BLOCK_OVERHEAD
      out.push(open(key, blockAad(aad, k, k === n - 1), sealed.subarray(at, at + size), `${what}, block ${k}`))
      at += size
    }
  } catch (err) {
    for (const block of out) block.fill(0)
    throw err
  }
  return out
}

/**
 * Opens a whole sealed chunk (sealed with `salt`, if any) into its blocks' plaintexts, in order;
 * IntegrityError on any change (nothing is ever returned then).
 */
export function openChunk(key: Buffer, fileId: Buffer, index: number, sealed: Buffer, salt?: Buffer): Buffer[] {
  checkChunk(key, fileId, index, salt)
  const what = `chunk ${index} of file ${fileId.toString('hex')}`
  let plainLen: number
  try {
    plainLen = plainLength(sealed.length)
  } catch (err) {
    throw new IntegrityError(`${what}: ${(err as Error).message}`)
  }
  return openRun(key, fileId, index, salt, plainLen, 0, sealed, what)
}

export interface BlockSpan {
  /** First block touched by the range. */
  firstBlock: number
  /** Last block touched by the range (inclusive). */
  lastBlock: number
  /** Byte offset of firstBlock in the sealed chunk. */
  sealedStart: number
  /** Byte offset just after lastBlock in the sealed chunk (exclusive). */
  sealedEnd: number
}

/**
 * The blocks, and the stored byte range, that cover plaintext bytes [plainStart, plainEnd) of a chunk
 * of plainLength bytes. An empty range still names one block (the one holding plainStart, or the
 * last block when plainStart is the end of the chunk), so a caller can always fetch something.
 */
export function blockSpan(plainStart: number, plainEnd: number, plainLength: number): BlockSpan {
  checkPlainLength(plainLength)
  if (!Number.isSafeInteger(plainStart) || !Number.isSafeInteger(plainEnd) || plainStart < 0 || plainStart > plainEnd || plainEnd > plainLength) {
    throw new RangeError(`bad plaintext range [${plainStart}, ${plainEnd}) of a ${plainLength}-byte chunk`)
  }
  const n = blockCount(plainLength)
  const firstBlock = Math.min(Math.floor(plainStart / BLOCK_SIZE), n - 1)
  const lastBlock = plainEnd > plainStart ? Math.floor((plainEnd - 1) / BLOCK_SIZE) : firstBlock
  const sealedStart = firstBlock * SEALED_BLOCK_SIZE
  const sealedEnd = lastBlock === n - 1 ? sealedLength(plainLength) : (lastBlock + 1) * SEALED_BLOCK_SIZE
  return { firstBlock, lastBlock, sealedStart, sealedEnd }
}

/**
 * The Range-read path: opens consecutive blocks starting at `firstBlock` (the bytes
 * [sealedStart, sealedEnd) of a blockSpan) of a chunk of `plainLength` plaintext bytes, and returns
 * each block's plaintext in order (the first starts at plaintext offset firstBlock * BLOCK_SIZE).
 * IntegrityError when any block fails or the bytes do not end on a block boundary.
 */
export function openBlocks(key: Buffer, fileId: Buffer, index: number, plainLength: number, firstBlock: number, sealed: Buffer, salt?: Buffer): Buffer[] {
  checkChunk(key, fileId, index, salt)
  const n = blockCount(plainLength)
  if (!Number.isSafeInteger(firstBlock) || firstBlock < 0 || firstBlock >= n) {
    throw new RangeError(`firstBlock ${firstBlock} is outside a ${n}-block chunk`)
  }
  return openRun(key, fileId, index, salt, plainLength, firstBlock, sealed, `chunk ${index} of file ${fileId.toString('hex')}`)
}
