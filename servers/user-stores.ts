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

  of(user: string): Promise<Stores> {
    let s = this.stores.get(user)
    if (!s) {
      const tmp = () => this.layout.tmpFile()
      const blobs = new BlobStore(this.layout.blobsDir(user), tmp)
      const records = new RecordStore(this.layout.recordsDir(user), tmp)
      s = blobs.scan().then(() => ({ blobs, records }))
      s.catch(() => this.stores.delete(user))
      this.stores.set(user, s)
    }
    return s
  }
}
