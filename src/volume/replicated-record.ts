// A small sealed value kept on several servers with compare-and-swap (the volume head, the lease).
// Each server versions its copy on its own; a writer remembers the version it last saw on each.
import { openMeta, sealMeta } from '../crypto'
import { RecordCopy, VersionConflictError, VolumeStore } from './store'

export interface OpenedCopy<T> {
  server: string
  version: number
  value: T | null
  /** Set when the copy exists but could not be opened (tampered, another key). */
  error?: Error
}

/** Another writer changed the record between our read and our write. */
export class RecordConflictError extends Error {
  constructor(readonly record: string, readonly server: string) {
    super(`record ${record} was changed on server ${server} by another writer`)
    this.name = 'RecordConflictError'
  }
}

export class ReplicatedRecord<T> {
  private readonly versions = new Map<string, number>()

  constructor(
    private readonly store: VolumeStore,
    readonly name: string,
    private readonly key: Buffer,
    private readonly copies: number,
  ) {}

  /** Every reachable copy, opened; remembers each server's version for the next write. */
  async readAll(): Promise<OpenedCopy<T>[]> {
    const raw = await this.store.readRecordEverywhere(this.name)
    return raw.map((c) => this.open(c))
  }

  /**
   * Writes `value` on `copies` live servers, the first ones in rank order; a server that fails is
   * replaced by the next live one (readers look everywhere), so a failure during the write does not
   * leave fewer copies. A copy that moved on since we last saw it is replaced only when `mayReplace`
   * accepts what it now holds. Returns the servers written.
   */
  async write(value: T, mayReplace: (current: T | null) => boolean): Promise<string[]> {
    const sealed = sealMeta(this.key, this.name, Buffer.from(JSON.stringify(value)))
    const candidates = this.store.rank(this.name).filter((m) => m.up && m.id).map((m) => m.id!)
    if (candidates.slice(0, this.copies).some((id) => !this.versions.has(id))) await this.readAll()
    const written: string[] = []
    const errors: Error[] = []
    let conflicted = false // the value lost to another writer: spread it no further
    const lane = async (): Promise<void> => {
      for (let server = candidates.shift(); server && !conflicted; server = candidates.shift()) {
        try {
          await this.casOne(server, sealed, mayReplace)
          written.push(server)
          return
        } catch (err) {
          errors.push(err as Error)
          if (err instanceof RecordConflictError) conflicted = true
        }
      }
    }
    await Promise.all(Array.from({ length: this.copies }, lane))
    const conflict = errors.find((e) => e instanceof RecordConflictError)
    if (conflict) throw conflict
    if (written.length === 0) {
      throw new Error(`could not write record ${this.name} on any server: ${errors.map((e) => e.message).join('; ') || 'no server is up'}`)
    }
    return written
  }

  private async casOne(server: string, sealed: Buffer, mayReplace: (current: T | null) => boolean): Promise<void> {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        this.versions.set(server, await this.store.casRecord(server, this.name, this.versions.get(server) ?? 0, sealed))
        return
      } catch (err) {
        if (!(err instanceof VersionConflictError)) throw err
        const current = (await this.readAll()).find((c) => c.server === server)
        if (!current || current.error || !mayReplace(current.value)) throw new RecordConflictError(this.name, server)
      }
    }
    throw new RecordConflictError(this.name, server)
  }

  private open(copy: RecordCopy): OpenedCopy<T> {
    this.versions.set(copy.server, copy.version)
    if (!copy.value) return { server: copy.server, version: copy.version, value: null }
    try {
      return { server: copy.server, version: copy.version, value: JSON.parse(openMeta(this.key, this.name, copy.value).toString('utf8')) as T }
    } catch (err) {
      return { server: copy.server, version: copy.version, value: null, error: err as Error }
    }
  }
}
