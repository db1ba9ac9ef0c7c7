// Memory for bytes that live only briefly (a sealed chunk between the socket and its opening, a
// disk cache read), given back and handed out again. A fresh 4 MiB buffer costs the kernel ~1,000
// page faults the first time it is written (0.18-0.32 CPU-s per GiB copied in, against 0.04-0.07
// into memory used before, measured here) and the collector a run for its external memory.

/** Spare memory is kept in steps of this many bytes (a request takes a spare at most one step larger). */
const STEP = 64 * 1024

export class BufferPool {
  private readonly spares: ArrayBuffer[] = []
  private readonly own = new WeakSet<ArrayBuffer>()
  private spareBytes = 0

  /**
   * @param maxLength requests longer than this get memory of their own, never pooled
   * @param maxSpareBytes memory kept for later at most (what is given back beyond it is left to the collector)
   */
  constructor(private readonly maxLength: number, private readonly maxSpareBytes: number) {}

  /** A buffer of `length` bytes (contents undefined): spare memory when some fits, else new. */
  take(length: number): Buffer {
    if (length > this.maxLength || length === 0) return Buffer.allocUnsafe(length)
    // Few spares (maxSpareBytes over buffers of this size), so a scan is cheaper than any index.
    for (let k = this.spares.length - 1; k >= 0; k--) {
      const ab = this.spares[k]!
      if (ab.byteLength >= length && ab.byteLength - length < STEP) {
        this.spares.splice(k, 1)
        this.spareBytes -= ab.byteLength
        return Buffer.from(ab, 0, length)
      }
    }
    const ab = new ArrayBuffer(Math.ceil(length / STEP) * STEP)
    this.own.add(ab)
    return Buffer.from(ab, 0, length)
  }

  /**
   * Gives back a buffer `take` returned, once nothing reads or writes it any more. A buffer from
   * elsewhere is ignored, so a caller may give back whatever it was handed. When the spares are
   * full, the oldest make room: spares of sizes no longer asked for never keep out those that are.
   */
  give(bytes: Buffer): void {
    const ab = bytes.buffer as ArrayBuffer
    if (!this.own.has(ab)) return
    if (this.spares.includes(ab)) throw new Error('internal: a pooled buffer was given back twice')
    if (ab.byteLength > this.maxSpareBytes) return
    while (this.spareBytes + ab.byteLength > this.maxSpareBytes) this.spareBytes -= this.spares.shift()!.byteLength
    this.spares.push(ab)
    this.spareBytes += ab.byteLength
  }

  /** Bytes of spare memory held now. */
  get bytes(): number {
    return this.spareBytes
  }
}
