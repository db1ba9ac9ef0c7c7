// The blob and record stores of each user, created on first use; existing ones are counted at start.
import { readdir } from 'node:fs/promises'
import { isUserName } from '../src/protocol'
import { BlobStore } from './blob-store'
import { Layout } from './layout'
import { RecordStore } from './record-store'

export interface Stores {
  blobs: BlobStore
  records: RecordStore
}

export class UserStores {
  private readonly stores = new Map<string, Promise<Stores>>()

  constructor(private readonly layout: Layout) {}

  /** Scans every user directory present (blob counts and bytes). */
  async scanAll(): Promise<void> {
    for (const name of await readdir(this.layout.usersDir)) if (isUserName(name)) await this.of(name)
  }

  /** The users with a store on disk or in use, sorted. */
  async users(): Promise<string[]> {
    const names = new Set([...this.stores.keys(), ...(await readdir(this.layout.usersDir)).filter(isUserName)])
    return [...names].sort()
  }

  /** Copies quarantined on this server, all users in use. */
  async quarantined(): Promise<number> {
    let n = 0
    for (const s of await Promise.allSettled(this.stores.values())) if (s.status === 'fulfilled') n += s.value.blobs.quarantined
    return n
  }

  of(user: string): Promise<Stores> {
    let s = this.stores.get(user)
    if (!s) {
      const tmp = () => this.layout.tmpFile()
      const blobs = new BlobStore(this.layout.blobsDir(user), this.layout.quarantineDir(user), tmp)
      const records = new RecordStore(this.layout.recordsDir(user), tmp)
      s = blobs.scan().then(() => ({ blobs, records }))
      s.catch(() => this.stores.delete(user))
      this.stores.set(user, s)
    }
    return s
  }
}
