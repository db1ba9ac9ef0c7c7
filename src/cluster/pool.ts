// The set of members, their rendezvous order for a key, and the counters fsck and tests read.
import { memberUrl } from './member-url'
import { ClusterConfigError } from './errors'
import { Member } from './member'
import { rankBy } from './placement'
import { BufferPool } from '../protocol'

export interface CorruptionReport {
  /** Blob id. */
  id: string
  /** Server id (or URL) that served bad bytes. */
  server: string
  /** What was wrong: a hash mismatch (whole blob) or the caller's check failing (range read). */
  detail: string
  at: number
}

export interface ClusterCounters {
  /** Blob reads that needed more than one server. */
  failovers: number
  /** Replicas that served bytes not matching the id (or failing the caller's check). */
  corruptions: number
  /** Writes that did not land on all of their home servers (under-replicated or off home). */
  degradedWrites: number
  /** Attempts repeated after a transient failure. */
  retries: number
}

/** How many corruption reports are kept (the counter keeps counting). */
const MAX_REPORTS = 1000

/** Ranges up to this size (a sealed 4 MiB chunk and more) are read into recycled memory, of which this much is kept. */
const RANGE_POOLED_MAX_BYTES = 8 * 1024 * 1024
const RANGE_SPARE_BYTES = 24 * 1024 * 1024

export interface PoolSettings {
  replicas: number
  writeQuorum: number
  timeoutMs: number
  /** Parallel requests per server in getMany. */
  readConcurrency: number
  log: (line: string) => void
}

export class Pool {
  readonly corruptions: CorruptionReport[] = []
  readonly counters: ClusterCounters = { failovers: 0, corruptions: 0, degradedWrites: 0, retries: 0 }
  /** Memory for ranges read and checked at once (reads.getRange): each answer's bytes go back here after their check. */
  readonly rangeBuffers = new BufferPool(RANGE_POOLED_MAX_BYTES, RANGE_SPARE_BYTES)

  constructor(readonly members: Member[], readonly settings: PoolSettings) {}

  get log(): (line: string) => void {
    return this.settings.log
  }

  /**
   * Every member in rendezvous order for `key` (up or down); members that are draining come last,
   * in their own rendezvous order: they are nobody's home, yet reads still reach what they hold.
   */
  rank(key: string): Member[] {
    const ranked = rankBy(this.members, (m) => m.placementId, key)
    return ranked.some((m) => m.draining) ? [...ranked.filter((m) => !m.draining), ...ranked.filter((m) => m.draining)] : ranked
  }

  /**
   * The order in which a blob is asked for: its home servers (the first R in rank order) that are
   * up — members whose recent calls mostly failed (health < 0.5) after the healthy ones — then the
   * other live servers in rank order (a degraded write may have put it there), then, as a last
   * resort, the servers marked down, in rank order.
   */
  readOrder(id: string): Member[] {
    const ranked = this.rank(id)
    const R = this.settings.replicas
    const home = ranked.slice(0, R).filter((m) => m.up)
    const homeOrdered = [...home.filter((m) => m.health >= 0.5), ...home.filter((m) => m.health < 0.5)]
    const rest = ranked.slice(R).filter((m) => m.up)
    const down = ranked.filter((m) => !m.up)
    return [...homeOrdered, ...rest, ...down]
  }

  /** The member named by id or URL. */
  byName(server: string): Member {
    const m = this.members.find((x) => x.id === server || x.url === server || x.placementId === server)
    if (m) return m
    let url: string | null = null
    try {
      url = memberUrl(server)
    } catch {
      /* not a URL */
    }
    const byUrl = url ? this.members.find((x) => x.url === url) : undefined
    if (byUrl) return byUrl
    throw new ClusterConfigError(`unknown server ${server} (members: ${this.members.map((x) => x.name).join(', ')})`)
  }

  live(): Member[] {
    return this.members.filter((m) => m.up)
  }

  reportCorruption(id: string, m: Member, detail: string): void {
    this.counters.corruptions++
    const report = { id, server: m.name, detail, at: Date.now() }
    if (this.corruptions.length >= MAX_REPORTS) this.corruptions.shift()
    this.corruptions.push(report)
    this.log(`edfs cluster: CORRUPT replica of blob ${id} on server ${m.name} (${m.url}): ${detail}; using another replica; the server re-checks its copy (fsck --repair restores it)`)
    // The server hashes its copy at once and quarantines it if it is bad (a torn read is not).
    void m.call((c) => c.verifyBlobs([id]), true).catch(() => undefined)
  }
}
