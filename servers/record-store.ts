// One user's records: DATA/users/<user>/records/<name>, one file each: a 16-byte header
// ("EDFSREC1" + version as big-endian uint64) then the value. Value and version are therefore
// replaced together by one atomic rename. Compare-and-swap is serialized per record name.
import { mkdir, readFile, rm, unlink } from 'node:fs/promises'
import path from 'node:path'
import { HttpError, fsErrorToHttp } from './errors'
import { fsyncDir, writeFileAtomic } from './fsutil'
import { KeyedLock } from './keyed-lock'

const MAGIC = Buffer.from('EDFSREC1')
const HEADER = 16
/** Largest record value. */
export const MAX_RECORD_SIZE = 1024 * 1024

export interface RecordValue {
  version: number
  value: Buffer
}

export class RecordStore {
  private readonly lock = new KeyedLock()
  private dirReady = false

  constructor(
    readonly dir: string,
    private readonly tmpFile: () => string,
  ) {}

  /** Name must be validated by the caller (isRecordName). */
  async get(name: string): Promise<RecordValue | null> {
    let data: Buffer
    try {
      data = await readFile(path.join(this.dir, name))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw err
    }
    if (data.length < HEADER || !data.subarray(0, 8).equals(MAGIC)) throw new Error(`record ${name} is corrupt on disk`)
    return { version: Number(data.readBigUInt64BE(8)), value: data.subarray(HEADER) }
  }

  /** Writes when the stored version is `expect` (0: absent); returns the new version. */
  async put(name: string, expect: number, value: Buffer): Promise<number> {
    return this.lock.run(name, async () => {
      const current = (await this.get(name))?.version ?? 0
      if (current !== expect) throw conflict(current)
      const header = Buffer.alloc(HEADER)
      MAGIC.copy(header)
      header.writeBigUInt64BE(BigInt(current + 1), 8)
      await this.ensureDir()
      const tmp = this.tmpFile()
      try {
        await writeFileAtomic(tmp, path.join(this.dir, name), [header, value])
      } catch (err) {
        await rm(tmp, { force: true }).catch(() => undefined)
        throw fsErrorToHttp(err) ?? err
      }
      return current + 1
    })
  }

  /** Removes the record when its version is `expect`; false when absent. */
  async delete(name: string, expect: number): Promise<boolean> {
    return this.lock.run(name, async () => {
      const current = await this.get(name)
      if (!current) return false
      if (current.version !== expect) throw conflict(current.version)
      await unlink(path.join(this.dir, name))
      await fsyncDir(this.dir)
      return true
    })
  }

  private async ensureDir(): Promise<void> {
    if (this.dirReady) return
    const created = await mkdir(this.dir, { recursive: true, mode: 0o700 })
    if (created) {
      await fsyncDir(path.dirname(this.dir))
      await fsyncDir(path.dirname(path.dirname(this.dir)))
    }
    this.dirReady = true
  }
}

function conflict(current: number): HttpError {
  return new HttpError('version-conflict', `the record is at version ${current}`, { version: current })
}
