// Questions and orders for every live member at once: which hold these blobs (locate), are their
// copies sound (verify), delete a blob everywhere, list everything, how much space is there.
import { MAX_HAVE_IDS, MAX_LIST_LIMIT, MAX_VERIFY_IDS } from '../protocol'
import { Attempt, ClusterConnectError, checkBlobId, reasonOf } from './errors'
import { idempotent } from './idempotent'
import type { Pool } from './pool'

/** id -> names of the live members that hold it, in its rendezvous order ([] when none). */
export async function locate(pool: Pool, ids: string[]): Promise<Map<string, string[]>> {
  const unique = checkedUnique(ids)
  const out = new Map<string, string[]>(unique.map((id) => [id, []]))
  if (unique.length === 0) return out
  const batches = batchesOf(unique, MAX_HAVE_IDS)
  await Promise.all(
    pool.live().map(async (m) => {
      try {
        for (const batch of batches) {
          const have = await idempotent(pool, m, (c) => c.have(batch))
          for (const id of have) out.get(id)?.push(m.name)
        }
      } catch (err) {
        pool.log(`edfs cluster: locate: server ${m.name} did not answer: ${reasonOf(err)}`)
      }
    }),
  )
  for (const [id, servers] of out) sortByRank(pool, id, servers)
  return out
}

/**
 * id -> the live members whose copy hashes to its id (`ok`) and those whose copy did not (`bad`,
 * now quarantined there). The members hash their own copies: no blob crosses the network.
 * `onProgress` gets the number of (member, batch) answers so far and the total.
 */
export async function verify(
  pool: Pool,
  ids: string[],
  onProgress?: (done: number, total: number) => void,
): Promise<Map<string, { ok: string[]; bad: string[] }>> {
  const unique = checkedUnique(ids)
  const out = new Map(unique.map((id) => [id, { ok: [] as string[], bad: [] as string[] }]))
  const batches = batchesOf(unique, MAX_VERIFY_IDS)
  const live = pool.live()
  let done = 0
  await Promise.all(
    live.map(async (m) => {
      try {
        for (const batch of batches) {
          const v = await idempotent(pool, m, (c) => c.verifyBlobs(batch))
          for (const id of v.ok) out.get(id)?.ok.push(m.name)
          for (const id of v.bad) out.get(id)?.bad.push(m.name)
          onProgress?.(++done, live.length * batches.length)
        }
      } catch (err) {
        throw new ClusterConnectError(`verify: server ${m.name} did not answer, so its copies are unchecked`, [{ url: m.url, reason: reasonOf(err) }])
      }
    }),
  )
  for (const [id, v] of out) sortByRank(pool, id, v.ok)
  return out
}

/** Deletes the blob on every live member; returns how many copies were removed. */
export async function deleteEverywhere(pool: Pool, id: string): Promise<number> {
  checkBlobId(id)
  const live = pool.live()
  const results = await Promise.allSettled(live.map((m) => idempotent(pool, m, (c) => c.deleteBlob(id))))
  const failed: Attempt[] = []
  let removed = 0
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') removed += r.value ? 1 : 0
    else failed.push({ server: live[i]!.name, reason: reasonOf(r.reason) })
  })
  if (failed.length) pool.log(`edfs cluster: delete ${id}: ${failed.map((f) => `${f.server}: ${f.reason}`).join('; ')} (a copy may remain; gc removes it later)`)
  return removed
}

/** Every blob on every live member, member by member, page by page. */
export async function* listAll(pool: Pool): AsyncIterable<{ server: string; id: string; size: number; mtimeMs: number }> {
  for (const m of pool.live()) {
    let after: string | undefined
    for (let page = 0; page < 1_000_000; page++) {
      const body = await idempotent(pool, m, (c) => c.listBlobs(after, MAX_LIST_LIMIT))
      for (const b of body.blobs) yield { server: m.name, id: b.id, size: b.size, mtimeMs: b.mtimeMs }
      if (!body.next || body.blobs.length === 0) break
      after = body.next
    }
  }
}

/**
 * Space on the live members, added up (from their health answers), each disk once: servers that
 * share a disk report the same `disk` id.
 */
export async function capacity(pool: Pool): Promise<{ totalBytes: number; freeBytes: number }> {
  const live = pool.live()
  const answers = await Promise.allSettled(live.map((m) => idempotent(pool, m, (c) => c.health())))
  const disks = new Set<string>()
  let totalBytes = 0
  let freeBytes = 0
  answers.forEach((a, i) => {
    if (a.status === 'rejected') return
    if (!live[i]!.markUp(a.value)) return
    const disk = a.value.disk ?? a.value.id // a server older than the disk id: a disk of its own
    if (disks.has(disk)) return
    disks.add(disk)
    totalBytes += a.value.totalBytes
    freeBytes += a.value.freeBytes
  })
  return { totalBytes, freeBytes }
}

function checkedUnique(ids: string[]): string[] {
  const unique = [...new Set(ids)]
  for (const id of unique) checkBlobId(id)
  return unique
}

function batchesOf(ids: string[], size: number): string[][] {
  const batches: string[][] = []
  for (let i = 0; i < ids.length; i += size) batches.push(ids.slice(i, i + size))
  return batches
}

/** Sorts member names into the blob's rendezvous order. */
function sortByRank(pool: Pool, id: string, servers: string[]): void {
  if (servers.length < 2) return
  const order = pool.rank(id).map((m) => m.name)
  servers.sort((a, b) => order.indexOf(a) - order.indexOf(b))
}
