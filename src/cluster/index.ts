// The client's view of the storage servers: a pool with health and back-off, rendezvous placement,
// replicated writes and traffic-optimized, verified reads. docs/cluster.md explains the rules. Cluster
// holds the pool and its lifecycle and delegates each kind of work: writes.ts, reads.ts, survey.ts
// (every live member at once), records.ts.
import { ByteRange, ServerError } from '../protocol'
import { ClusterConfigError, ClusterConnectError, checkBlobId, classify, reasonOf } from './errors'
import { Member, MemberOptions, MemberStatus } from './member'
import { memberUrl } from './member-url'
import { ClusterCounters, CorruptionReport, Pool } from './pool'
import { idempotent } from './idempotent'
import * as reads from './reads'
import * as records from './records'
import type { RecordAnswer } from './records'
import * as survey from './survey'
import { replicationProblem } from './replication'
import { DEFAULT_TIMEOUT_MS } from './server-client'
import * as writes from './writes'

export * from './errors'
export type { MemberStatus } from './member'
export type { ClusterCounters, CorruptionReport } from './pool'
export type { PutResult } from './writes'
export { rankIds, place, score } from './placement'
export { DEFAULT_TIMEOUT_MS, ServerClient } from './server-client'
export { memberClient } from './member-client'
export type { MemberClient } from './member-client'
export { memberUrl, parseMemberUrl } from './member-url'
export { replicationProblem } from './replication'
export type { MemberLocation, S3Location } from './member-url'

export interface ClusterOptions {
  /** Member URLs: edfs servers (http:// or https://, loopback or LAN) and S3 buckets (s3://, member-url.ts). */
  servers: string[]
  user: string
  password: string
  /** R: copies of each blob, 1..servers.length; default 2 (capped at the number of servers). */
  replicas?: number
  /** W: copies that must be stored for put() to succeed, 1..R; default 1. */
  writeQuorum?: number
  /** Longest silence on any call (connect, first byte, between bytes); default DEFAULT_TIMEOUT_MS (30 s). */
  timeoutMs?: number
  /** PEM of a CA to trust for https URLs. */
  ca?: string | Buffer
  /** Warnings and state changes (server down/back, degraded writes, corruption). Default: silent. */
  log?: (line: string) => void
  /**
   * URL -> server id, as remembered from an earlier run (e.g. saved in the client's config from
   * members()). A server that is down at connect then still takes its rightful place in the
   * rendezvous order, so blobs written meanwhile land where reads will look for them later. A server
   * with neither a known nor a reported id is ranked under a stand-in id made from its URL.
   */
  knownIds?: Record<string, string>
  /** A long-running process (the mount daemon): see ServerClientOptions.longLived. */
  longLived?: boolean
  /** Parallel requests per server in getMany; default 4. */
  readConcurrency?: number
  /** First and largest delay of the background health probe of a down server; default 250 / 10000 ms. */
  probeBackoffMs?: { baseMs: number; maxMs: number }
}

/** One server of a membership list (setMembers). */
export interface MemberSpec {
  url: string
  id?: string
  draining?: boolean
}

export class Cluster {
  readonly replicas: number
  readonly writeQuorum: number
  private readonly pool: Pool
  private closed = false

  private constructor(pool: Pool, private readonly memberOptions: Omit<MemberOptions, 'url' | 'knownId'>) {
    this.pool = pool
    this.replicas = pool.settings.replicas
    this.writeQuorum = pool.settings.writeQuorum
  }

  /**
   * Asks every server for its health in parallel and logs in to those that answer. Throws
   * ClusterConnectError naming each URL and its reason when none answers, or when a server refuses
   * the user name and password. Servers that do not answer stay members (down, probed in the background).
   */
  static async connect(opts: ClusterOptions): Promise<Cluster> {
    const log = opts.log ?? (() => {})
    if (!opts || !Array.isArray(opts.servers) || opts.servers.length === 0) throw new ClusterConfigError('no storage servers configured')
    const urls: string[] = []
    for (const s of opts.servers) {
      const url = memberUrl(s)
      if (urls.includes(url)) throw new ClusterConfigError(`server ${url} is listed twice`)
      urls.push(url)
    }
    const n = urls.length
    const replicas = opts.replicas ?? Math.min(2, n)
    const writeQuorum = opts.writeQuorum ?? 1
    const problem = replicationProblem(replicas, writeQuorum, n)
    if (problem) throw new ClusterConfigError(problem)
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
    if (!(timeoutMs > 0)) throw new ClusterConfigError(`timeoutMs must be positive, got ${opts.timeoutMs}`)
    const known = new Map<string, string>()
    for (const [url, id] of Object.entries(opts.knownIds ?? {})) {
      known.set(memberUrl(url), id)
    }
    const probe = opts.probeBackoffMs ?? { baseMs: 250, maxMs: 10_000 }
    const memberOptions = { user: opts.user, password: opts.password, timeoutMs, ca: opts.ca, longLived: opts.longLived, probe, log }
    const members = urls.map((url) => new Member({ ...memberOptions, url, knownId: known.get(url) }))
    const pool = new Pool(members, { replicas, writeQuorum, timeoutMs, readConcurrency: opts.readConcurrency ?? 4, log })
    const cluster = new Cluster(pool, memberOptions)
    try {
      const health = await Promise.allSettled(members.map((m) => m.checkNow()))
      const failures = health.flatMap((h, i) => (h.status === 'rejected' ? [{ url: urls[i]!, reason: reasonOf(h.reason) }] : []))
      if (failures.length === n) throw new ClusterConnectError(`no storage server answers (${n} configured)`, failures)
      const seen = new Map<string, string>()
      for (const m of members) {
        if (!m.reportedId) continue
        const other = seen.get(m.reportedId)
        if (other) throw new ClusterConfigError(`servers ${other} and ${m.url} report the same id ${m.reportedId}: the same server listed under two URLs, or a copied data directory`)
        seen.set(m.reportedId, m.url)
      }
      const up = members.filter((m) => m.up)
      const logins = await Promise.allSettled(up.map((m) => m.client.login()))
      const refused: { url: string; reason: string }[] = []
      logins.forEach((l, i) => {
        if (l.status === 'fulfilled') return
        const m = up[i]!
        if (l.reason instanceof ServerError && l.reason.status === 401) refused.push({ url: m.url, reason: reasonOf(l.reason) })
        else {
          m.failed(l.reason)
          if (classify(l.reason) !== 'down') m.markDown(`login failed: ${reasonOf(l.reason)}`)
          failures.push({ url: m.url, reason: `login failed: ${reasonOf(l.reason)}` })
        }
      })
      if (refused.length > 0) throw new ClusterConnectError(`login as ${JSON.stringify(opts.user)} refused (wrong user name or password?)`, refused)
      if (!members.some((m) => m.up)) throw new ClusterConnectError(`no storage server accepted a login (${n} configured)`, failures)
      for (const f of failures) {
        const m = members.find((x) => x.url === f.url)!
        log(`edfs cluster: server ${f.url} is down at connect (${f.reason}); ${m.knownId ? `placed by its known id ${m.knownId}` : 'its id is unknown, placed by its URL until it answers'}; probing in the background`)
      }
      return cluster
    } catch (err) {
      cluster.close()
      throw err
    }
  }

  /** Each member: url, id, up, latencyMs, lastError, health (0..1). Save url -> id as `knownIds`. */
  members(): MemberStatus[] {
    return this.pool.members.map((m) => m.status())
  }

  /**
   * Makes the members exactly `list` (the volume's membership record): new servers join (asked for
   * their health now; down ones are probed), servers not listed leave (their connections close),
   * and `draining` is set as listed. R stays; fewer members than R is refused. Returns the URLs
   * that joined and left.
   */
  async setMembers(list: MemberSpec[]): Promise<{ added: string[]; removed: string[] }> {
    this.open()
    const wanted = new Map<string, MemberSpec>()
    for (const spec of list) {
      wanted.set(memberUrl(spec.url), spec)
    }
    if (wanted.size < this.replicas) throw new ClusterConfigError(`a membership of ${wanted.size} servers cannot hold ${this.replicas} copies`)
    const members = this.pool.members
    const removed = members.filter((m) => !wanted.has(m.url))
    const added = [...wanted].filter(([url]) => !members.some((m) => m.url === url)).map(([url, spec]) => new Member({ ...this.memberOptions, url, knownId: spec.id }))
    for (const m of removed) {
      members.splice(members.indexOf(m), 1)
      m.close()
    }
    members.push(...added)
    for (const m of members) m.draining = wanted.get(m.url)?.draining === true
    await Promise.allSettled(added.map((m) => m.checkNow()))
    for (const m of added) this.pool.log(`edfs cluster: server ${m.name} (${m.url}) joined${m.up ? '' : ` (down: ${m.lastError ?? 'no answer'}; probing)`}`)
    for (const m of removed) this.pool.log(`edfs cluster: server ${m.name} (${m.url}) left`)
    return { added: added.map((m) => m.url), removed: removed.map((m) => m.url) }
  }

  /**
   * Changes the user's login on every member (all must be up: a server left out would refuse the
   * new password). `replace` false: both passwords log in afterwards; true: only the new one.
   * `onServer` is called after each server took it.
   */
  async changePassword(newPassword: string, replace: boolean, onServer?: (server: string) => void): Promise<void> {
    this.open()
    const down = this.pool.members.filter((m) => !m.up)
    if (down.length) throw new ClusterConfigError(`server ${down[0]!.name} (${down[0]!.url}) is down: every server must take the new password`)
    for (const m of this.pool.members) {
      await m.call((c) => c.changePassword(newPassword, replace), true)
      onServer?.(m.name)
    }
  }

  /** Asks one member for this user's stats now: throws when it does not answer or refuses the login. */
  async checkLogin(server: string): Promise<void> {
    this.open()
    await this.pool.byName(server).call((c) => c.stats(), true)
  }

  /** All members in rendezvous order for a blob id or any other key (e.g. a record name). */
  rank(key: string): MemberStatus[] {
    return this.pool.rank(key).map((m) => m.status())
  }

  /** Replicas that served corrupt bytes (most recent 1000), for fsck and tests. */
  get corruptions(): readonly CorruptionReport[] {
    return this.pool.corruptions
  }

  get counters(): Readonly<ClusterCounters> {
    return this.pool.counters
  }

  /** Stores a blob (id = SHA-256 of data) on `copies` (default R) servers; see docs/cluster.md. */
  put(id: string, data: Buffer, copies?: number): Promise<writes.PutResult> {
    this.open()
    return writes.put(this.pool, id, data, copies)
  }

  /** The blob, hash-verified, from one replica (next ones on failure). ChunkUnavailableError otherwise. */
  get(id: string): Promise<Buffer> {
    this.open()
    return reads.get(this.pool, id)
  }

  /**
   * Bytes [start, end) of a blob, passed through `check` (the caller's AEAD open, which throws on
   * bad bytes); returns what `check` returns. A range past the blob's end comes back shorter.
   * `check` sees the bytes only while it runs: their memory serves the next range read.
   */
  getRange<T>(id: string, range: ByteRange, check: (bytes: Buffer) => T): Promise<T> {
    this.open()
    return reads.getRange(this.pool, id, range, check)
  }

  /** Bulk read with bounded concurrency per server; onBlob is called as each blob arrives. */
  getMany(ids: string[], onBlob?: (id: string, data: Buffer) => void): Promise<Map<string, Buffer>> {
    this.open()
    return reads.getMany(this.pool, ids, onBlob)
  }

  /** id -> ids of the live servers that hold it (every id asked is a key; [] when none). */
  async locate(ids: string[]): Promise<Map<string, string[]>> {
    this.open()
    return survey.locate(this.pool, ids)
  }

  /** id -> the live servers whose copy is sound (`ok`) and those whose copy was not (`bad`, now quarantined). */
  async verify(ids: string[], onProgress?: (done: number, total: number) => void): Promise<Map<string, { ok: string[]; bad: string[] }>> {
    this.open()
    return survey.verify(this.pool, ids, onProgress)
  }

  /** Stores one copy on the named server (repair: put a blob where placement wants it). */
  async putOn(server: string, id: string, data: Buffer): Promise<void> {
    this.open()
    checkBlobId(id)
    const m = this.pool.byName(server)
    await m.call((c) => c.putBlob(id, data), true)
    m.sentBytes += data.length
  }

  /** Deletes the copy on the named server (repair: trim a surplus copy); true when one was there. */
  async deleteOn(server: string, id: string): Promise<boolean> {
    this.open()
    checkBlobId(id)
    return idempotent(this.pool, this.pool.byName(server), (c) => c.deleteBlob(id))
  }

  /** Deletes the blob on every live server; returns how many copies were removed. */
  async delete(id: string): Promise<number> {
    this.open()
    return survey.deleteEverywhere(this.pool, id)
  }

  /** Every blob on every live server, server by server, page by page. */
  listAll(): AsyncIterable<{ server: string; id: string; size: number; mtimeMs: number }> {
    this.open()
    return survey.listAll(this.pool)
  }

  /** The record on every live server that answers: version 0 and value null where it is absent. */
  async readRecordEverywhere(name: string): Promise<RecordAnswer[]> {
    this.open()
    return records.readRecordEverywhere(this.pool, name)
  }

  /** Compare-and-swap of a record on one server (records.ts); a lost race rejects with VersionConflictError. */
  async casRecord(server: string, name: string, expectVersion: number, value: Buffer): Promise<number> {
    this.open()
    return records.casRecord(this.pool, server, name, expectVersion, value)
  }

  /** Space on the live servers, added up, each disk once. */
  async capacity(): Promise<{ totalBytes: number; freeBytes: number }> {
    this.open()
    return survey.capacity(this.pool)
  }
  /** Stops probes and closes all connections. The cluster cannot be used afterwards. */
  close(): void {
    this.closed = true
    for (const m of this.pool.members) m.close()
  }

  private open(): void {
    if (this.closed) throw new ClusterConfigError('the cluster client is closed')
  }
}
