// Admission by free space: a request with a body is refused with 507 before its body is read when
// the disk cannot take it (free space, minus a reserve, minus the uploads already admitted). With
// `Expect: 100-continue` the client then never sends the body, so "full" arrives as a clean answer,
// never as a connection torn down mid-upload (which a client would take for a dead server).
import { statfs } from 'node:fs/promises'
import { HttpError } from './errors'

/** How long one statfs answer is trusted; admitted uploads are counted in between. */
const FRESH_MS = 1000
/** Kept free for records, the journal's compare-and-swap and the file system's own needs. */
const RESERVE_SHARE = 0.01
const RESERVE_MAX = 256 * 1024 * 1024

export class SpaceGuard {
  private free = 0
  private total = 0
  private checkedAt = -Infinity
  private admitted = 0
  private refreshing: Promise<void> | null = null

  constructor(private readonly dir: string) {}

  /** Free and total bytes of the data directory's file system (at most FRESH_MS old). */
  async space(): Promise<{ freeBytes: number; totalBytes: number }> {
    await this.refresh()
    return { freeBytes: this.free, totalBytes: this.total }
  }

  /**
   * Reserves `bytes` for one upload, or throws 507 insufficient-storage. `keepReserve`: the upload
   * must also leave the reserve free. Returns the release function (call it once the upload is
   * stored or failed).
   */
  async admit(bytes: number, keepReserve: boolean): Promise<() => void> {
    await this.refresh()
    const reserve = keepReserve ? Math.min(RESERVE_MAX, Math.floor(this.total * RESERVE_SHARE)) : 0
    if (bytes > this.free - reserve - this.admitted) {
      throw new HttpError('insufficient-storage', `the server is out of disk space: ${bytes} bytes do not fit in ${Math.max(0, this.free - reserve - this.admitted)} free`)
    }
    this.admitted += bytes
    let released = false
    return () => {
      if (released) return
      released = true
      this.admitted -= bytes
      this.checkedAt = -Infinity // what was stored (or freed) shows in the next statfs
    }
  }

  private refresh(): Promise<void> {
    if (performance.now() - this.checkedAt < FRESH_MS) return Promise.resolve()
    this.refreshing ??= statfs(this.dir)
      .then((s) => {
        this.free = s.bavail * s.bsize
        this.total = s.blocks * s.bsize
        this.checkedAt = performance.now()
      })
      .finally(() => (this.refreshing = null))
    return this.refreshing
  }
}
