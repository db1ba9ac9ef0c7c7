// Replicated writes: a blob goes to the first `copies` live servers of its rendezvous order, in
// parallel; a server that is down or fails is replaced by the next one in rank order (reads walk the
// same order, so they still find it). Never more than `copies` copies are written by one put.
import { ServerError } from '../protocol'
import { Attempt, BlobIdMismatchError, ClusterConfigError, WriteFailedError, checkBlobId, classify, reasonOf } from './errors'
import { Member } from './member'
import { Pool } from './pool'
import { setTimeout as sleep } from 'node:timers/promises'
import { backoffDelay } from './retry'

const RETRY_ROUNDS = 2
const RETRY_BACKOFF = { baseMs: 200, maxMs: 2000 }

export interface PutResult {
  /** Ids (URL when unknown) of the servers that hold the blob now, in rank order. */
  servers: string[]
  /** True when the blob is not on all of its `copies` home servers (under-replicated or off home): repair it. */
  degraded: boolean
}

export async function put(pool: Pool, id: string, data: Buffer, copies?: number): Promise<PutResult> {
  checkBlobId(id)
  if (!Buffer.isBuffer(data)) throw new ClusterConfigError('put needs the blob bytes as a Buffer')
  const n = pool.members.length
  const want = copies ?? pool.settings.replicas
  if (!Number.isInteger(want) || want < 1) throw new ClusterConfigError(`copies must be a positive integer, got ${copies}`)
  const target = Math.min(want, n)
  const quorum = Math.min(pool.settings.writeQuorum, target)

  const ranked = pool.rank(id)
  const home = new Set(ranked.slice(0, target))
  const stored = new Set<Member>()
  const tried: Attempt[] = []
  const transient = new Set<Member>()
  const full = new Set<Member>()
  const asked = new Set<Member>()
  let callerError: unknown = null

  /** `slots` parallel workers; each takes candidates in rank order until one stores the blob. */
  const fill = async (candidates: Member[], slots: number): Promise<void> => {
    let next = 0
    const slot = async (): Promise<void> => {
      while (next < candidates.length && callerError === null) {
        const m = candidates[next++]!
        if (stored.has(m)) continue
        asked.add(m)
        try {
          await m.call((c) => c.putBlob(id, data), true)
          m.sentBytes += data.length
          stored.add(m)
          transient.delete(m)
          return
        } catch (err) {
          const kind = classify(err)
          if (kind === 'caller') {
            // The server hashes every upload: that check is the one that counts (and costs the client nothing).
            callerError = err instanceof ServerError && err.code === 'hash-mismatch' ? new BlobIdMismatchError(id) : err
            return
          }
          tried.push({ server: m.name, reason: reasonOf(err) })
          // A full server is not asked again by this put: the next one in rank order takes its copy.
          if (kind === 'full') full.add(m)
          else transient.add(m)
        }
      }
    }
    await Promise.all(Array.from({ length: slots }, slot))
  }

  // 1. The live servers in rank order.
  await fill(ranked.filter((m) => m.up), target)
  // 2. Not enough for the quorum: the servers marked down too (one may be back before its probe says so).
  if (stored.size < quorum && callerError === null) {
    await fill(ranked.filter((m) => !asked.has(m)), target - stored.size)
  }
  // 3. Still short of the quorum: transient failures again, after a back-off.
  for (let round = 0; stored.size < quorum && callerError === null && round < RETRY_ROUNDS; round++) {
    const again = ranked.filter((m) => transient.has(m) && !stored.has(m))
    if (again.length === 0) break
    await sleep(backoffDelay(round, RETRY_BACKOFF))
    pool.counters.retries++
    await fill(again, target - stored.size)
  }
  if (callerError !== null) throw callerError
  const servers = ranked.filter((m) => stored.has(m))
  for (const m of ranked) if (!asked.has(m) && !m.up) tried.push({ server: m.name, reason: `marked down (${m.lastError ?? 'no answer'})` })
  if (servers.length < quorum) {
    const noneTook = servers.length === 0 && full.size > 0 && ranked.every((m) => full.has(m) || !m.up)
    throw new WriteFailedError(id, servers.map((m) => m.name), quorum, tried, noneTook)
  }
  const offHome = servers.filter((m) => !home.has(m))
  const degraded = servers.length < target || offHome.length > 0
  if (degraded) {
    pool.counters.degradedWrites++
    const missing = [...home].filter((m) => !stored.has(m)).map((m) => m.name)
    pool.log(
      `edfs cluster: warning: blob ${id} is degraded: ${servers.length} of ${target} copies stored, ${servers.length - offHome.length} on home servers` +
        ` and ${offHome.length} on the next servers in rank order (missing on ${missing.join(', ')}` +
        `${tried.length ? `: ${tried.map((t) => `${t.server}: ${t.reason}`).join('; ')}` : ''}); fsck --repair moves it home`,
    )
  }
  return { servers: servers.map((m) => m.name), degraded }
}
