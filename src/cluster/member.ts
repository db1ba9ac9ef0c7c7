// One server in the pool: its client, its health, and the background probe that brings it back.
import { HealthBody } from '../protocol'
import { ClusterConfigError, classify, reasonOf } from './errors'
import { MemberClient, memberClient } from './member-client'
import { BackoffPolicy, backoffDelay } from './retry'
import { TimeoutError, UnreachableError } from './server-transport'

export interface MemberStatus {
  url: string
  /** The server's stable id: as it reported it, else as given in `knownIds`, else undefined. */
  id: string | undefined
  up: boolean
  /** Smoothed latency of recent calls (ms), null before the first. */
  latencyMs: number | null
  /** The last failure, as text (null when the last call succeeded or none failed yet). */
  lastError: string | null
  /** 0..1: smoothed share of recent calls that succeeded; 0 while down. */
  health: number
  /** Leaving the volume: never a home server, read only for what it still holds. */
  draining: boolean
  /** Blob and record bytes stored on this member and read from it by this client (bodies, not HTTP overhead). */
  sentBytes: number
  receivedBytes: number
}

export interface MemberOptions {
  url: string
  user: string
  password: string
  timeoutMs: number
  ca?: string | Buffer
  /** A long-running process (the mount daemon): see ServerClientOptions.longLived. */
  longLived?: boolean
  knownId?: string
  probe: BackoffPolicy
  log: (line: string) => void
}

const ALPHA = 0.2
/** Errors worth one immediate second try on the same server: a keep-alive socket the server closed under us. */
const STALE_SOCKET = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'UND_ERR_SOCKET'])

export class Member {
  readonly url: string
  readonly client: MemberClient
  readonly knownId: string | undefined
  reportedId: string | undefined
  up = false
  latencyMs: number | null = null
  lastError: string | null = null
  /** The last failure was a timeout: the server hangs, so asking it again costs a whole timeout. */
  hung = false
  private successRate = 1
  private probeTimer: NodeJS.Timeout | null = null
  private probeAttempt = 0
  private probing = false
  /** The last other id this URL answered with (so the refusal is logged once). */
  private refusedId: string | undefined
  private closed = false
  /** Being removed from the volume: ranked after every other member, so it is nobody's home. */
  draining = false
  /** Body bytes this client stored here and read from here (the pool counts them). */
  sentBytes = 0
  receivedBytes = 0

  constructor(private readonly opts: MemberOptions) {
    this.client = memberClient({ url: opts.url, user: opts.user, password: opts.password, timeoutMs: opts.timeoutMs, ca: opts.ca, longLived: opts.longLived })
    this.url = this.client.url
    this.knownId = opts.knownId
  }

  get id(): string | undefined {
    return this.reportedId ?? this.knownId
  }

  /** What rendezvous hashing scores: the server id, or (id unknown) a stand-in made from the URL. */
  get placementId(): string {
    return this.id ?? `url:${this.url}`
  }

  /** Id when known, else URL: how errors and logs name this server. */
  get name(): string {
    return this.id ?? this.url
  }

  get health(): number {
    return this.up ? this.successRate : 0
  }

  status(): MemberStatus {
    return { url: this.url, id: this.id, up: this.up, latencyMs: this.latencyMs === null ? null : Math.round(this.latencyMs * 10) / 10, lastError: this.lastError, health: Math.round(this.health * 1000) / 1000, draining: this.draining, sentBytes: this.sentBytes, receivedBytes: this.receivedBytes }
  }

  /**
   * One call to this server with bookkeeping: latency and success feed the health score; a
   * network-level failure marks the server down and starts the probe. An idempotent call that hit
   * a stale keep-alive socket is tried once more at once (that is not the server's fault).
   */
  async call<T>(fn: (c: MemberClient) => Promise<T>, idempotent: boolean): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const t0 = performance.now()
      try {
        const r = await fn(this.client)
        this.succeeded(performance.now() - t0)
        return r
      } catch (err) {
        const code = err instanceof UnreachableError ? (err.cause as NodeJS.ErrnoException)?.code : (err as NodeJS.ErrnoException)?.code
        if (attempt === 0 && idempotent && !this.closed && code && STALE_SOCKET.has(code)) continue
        this.failed(err)
        throw err
      }
    }
  }

  succeeded(ms: number): void {
    this.successRate = this.successRate * (1 - ALPHA) + ALPHA
    this.latencyMs = this.latencyMs === null ? ms : this.latencyMs * (1 - ALPHA) + ms * ALPHA
    this.lastError = null
    this.hung = false
  }

  failed(err: unknown): void {
    const kind = classify(err)
    if (kind === 'caller' || kind === 'full') return
    this.successRate = this.successRate * (1 - ALPHA)
    this.lastError = reasonOf(err)
    this.hung = err instanceof TimeoutError
    if (kind === 'down') this.markDown(this.lastError)
  }

  /**
   * Marks the server up (it answered health) and remembers the id it reported — unless it answers
   * as another server than the one this member has been talking to (a server that took the freed
   * address, or a replaced data directory): that one stays down, because what it holds is not what
   * placement expects there. Returns whether the member is up.
   */
  markUp(health: HealthBody): boolean {
    if (!this.acceptsId(health.id)) {
      this.markDown(`answers as server ${health.id}, not ${this.reportedId}`)
      return false
    }
    this.up = true
    this.hung = false
    this.probeAttempt = 0
    if (this.successRate < 0.5) this.successRate = 0.5
    if (this.probeTimer) clearTimeout(this.probeTimer)
    this.probeTimer = null
    return true
  }

  markDown(reason: string): void {
    if (this.closed) return
    this.lastError = reason
    if (this.up) this.opts.log(`edfs cluster: server ${this.name} (${this.url}) marked down: ${reason}`)
    this.up = false
    this.scheduleProbe()
  }

  /**
   * The first id a server reports is adopted (over a stale one in the configuration, with a
   * warning); after that, an answer under another id is refused, logged once per id.
   */
  private acceptsId(id: string): boolean {
    if (this.reportedId === id) return true
    if (this.reportedId) {
      if (this.refusedId !== id) {
        this.refusedId = id
        this.opts.log(`edfs cluster: warning: ${this.url} now answers as server ${id}, not ${this.reportedId}: not using it (another server took the address, or its data directory was replaced; reopen the volume to accept it, then run fsck --repair)`)
      }
      return false
    }
    if (this.knownId && this.knownId !== id) {
      this.opts.log(`edfs cluster: warning: server ${this.url} reports id ${id}, but the configuration says ${this.knownId}; using ${id} (placement of blobs written meanwhile may differ; fsck --repair moves them)`)
    }
    this.reportedId = id
    return true
  }

  /** Background health probe with back-off; its timer and socket are unref'd (never keep a process alive). */
  private scheduleProbe(): void {
    if (this.closed || this.probeTimer || this.probing) return
    const delay = backoffDelay(this.probeAttempt++, this.opts.probe)
    this.probeTimer = setTimeout(() => {
      this.probeTimer = null
      this.probing = true
      this.client.probe(Math.min(this.opts.timeoutMs, 10_000))
        .then((h) => {
          this.probing = false
          if (this.closed) return
          if (this.markUp(h)) this.opts.log(`edfs cluster: server ${h.id} (${this.url}) is back`)
        })
        .catch((err) => {
          this.probing = false
          if (this.closed) return
          this.lastError = reasonOf(err)
          if (!this.up) this.scheduleProbe()
        })
    }, delay)
    this.probeTimer.unref()
  }

  /** Probes now (connect uses it; also handy after a known restart). */
  async checkNow(): Promise<HealthBody> {
    const t0 = performance.now()
    let h: HealthBody
    try {
      h = await this.client.health()
      this.succeeded(performance.now() - t0)
    } catch (err) {
      this.failed(err)
      if (classify(err) !== 'down') this.markDown(reasonOf(err))
      throw err
    }
    if (!this.markUp(h)) throw new ClusterConfigError(`${this.url} ${this.lastError}`)
    return h
  }

  close(): void {
    this.closed = true
    if (this.probeTimer) clearTimeout(this.probeTimer)
    this.probeTimer = null
    this.client.close()
  }
}
