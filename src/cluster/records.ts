// Records (small named values with a version per member): read from every live member, and
// compare-and-swap on one. The volume builds its replicated head and lease on these two.
import { isRecordName } from '../protocol'
import { ClusterConfigError, reasonOf } from './errors'
import { idempotent } from './idempotent'
import type { Pool } from './pool'

export interface RecordAnswer {
  server: string
  /** 0 where the record is absent. */
  version: number
  value: Buffer | null
}

/** The record on every live member that answers: version 0 and value null where it is absent. */
export async function readRecordEverywhere(pool: Pool, name: string): Promise<RecordAnswer[]> {
  checkRecordName(name)
  const live = pool.live()
  const results = await Promise.allSettled(live.map((m) => idempotent(pool, m, (c) => c.getRecord(name))))
  const out: RecordAnswer[] = []
  results.forEach((r, i) => {
    const m = live[i]!
    if (r.status === 'rejected') {
      pool.log(`edfs cluster: record ${name}: server ${m.name} did not answer: ${reasonOf(r.reason)}`)
      return
    }
    m.receivedBytes += r.value?.value.length ?? 0
    out.push(r.value ? { server: m.name, version: r.value.version, value: r.value.value } : { server: m.name, version: 0, value: null })
  })
  return out
}

/**
 * Compare-and-swap of a record on one member (id or URL): writes only if the stored version is
 * `expectVersion` (0: absent); returns the new version. Not retried (a lost answer would make a
 * retry conflict with itself); a lost race rejects with VersionConflictError.
 */
export async function casRecord(pool: Pool, server: string, name: string, expectVersion: number, value: Buffer): Promise<number> {
  checkRecordName(name)
  const m = pool.byName(server)
  const version = await m.call((c) => c.putRecord(name, expectVersion, value), false)
  m.sentBytes += value.length
  return version
}

function checkRecordName(name: string): void {
  if (!isRecordName(name)) throw new ClusterConfigError(`invalid record name ${JSON.stringify(name)}`)
}
