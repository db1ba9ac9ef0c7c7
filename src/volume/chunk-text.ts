// A chunk's plaintext as the chunk cache keeps it: the pieces it was opened in (one per 64 KiB AEAD
// block) rather than one buffer they were copied into. The copy into a fresh 4 MiB buffer cost a
// third of opening a chunk and a page fault per 4 KiB (profiled on a cold sequential read). A stream
// and any read of a cached chunk copy straight from the pieces into the FUSE reply; a random read
// across two blocks being fetched still joins them once (ChunkCache.range).
import { BLOCK_SIZE } from '../crypto'

export class ChunkText {
  /** @param step the length of every piece but the last */
  private constructor(private readonly pieces: readonly Buffer[], private readonly step: number, readonly length: number) {}

  /** Plaintext in one buffer (an inline chunk, one put together from slices, one just written). */
  static of(bytes: Buffer): ChunkText {
    return new ChunkText([bytes], Math.max(bytes.length, 1), bytes.length)
  }

  /** Consecutive AEAD blocks' plaintexts (crypto's openChunk / openBlocks): BLOCK_SIZE bytes each but the last. */
  static blocks(blocks: Buffer[]): ChunkText {
    if (blocks.length === 1) return ChunkText.of(blocks[0]!)
    for (let k = 0; k < blocks.length - 1; k++) if (blocks[k]!.length !== BLOCK_SIZE) throw new Error(`internal: block ${k} holds ${blocks[k]!.length} bytes, not ${BLOCK_SIZE}`)
    return new ChunkText(blocks, BLOCK_SIZE, (blocks.length - 1) * BLOCK_SIZE + blocks.at(-1)!.length)
  }

  /** Copies bytes [start, end) (end clamped to the length, like Buffer#copy) into `out` at `at`; returns the bytes copied. */
  copyTo(out: Buffer, at: number, start: number, end: number): number {
    end = Math.min(end, this.length, start + out.length - at)
    let copied = 0
    for (let pos = start; pos < end; ) {
      const k = Math.floor(pos / this.step)
      const offset = pos - k * this.step
      const n = this.pieces[k]!.copy(out, at + copied, offset, Math.min(this.pieces[k]!.length, offset + end - pos))
      copied += n
      pos += n
    }
    return copied
  }

  /** Bytes [start, end): a view when they lie in one piece (a random read's few KiB), else a copy. */
  slice(start: number, end: number): Buffer {
    end = Math.min(end, this.length)
    if (start >= end) return Buffer.alloc(0)
    const k = Math.floor(start / this.step)
    if (Math.floor((end - 1) / this.step) === k) return this.pieces[k]!.subarray(start - k * this.step, end - k * this.step)
    const out = Buffer.allocUnsafe(end - start)
    this.copyTo(out, 0, start, end)
    return out
  }
}
