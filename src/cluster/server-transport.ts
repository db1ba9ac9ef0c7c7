// How one request reaches a storage server and its answer comes back, in one attempt (no sessions,
// no retries). node:http by default; a long-lived process (the mount daemon) sends its pooled
// requests through undici instead.
//
// Measured on this machine (docs/cluster.md, "HTTP clients"): undici receives 4 MiB bodies for
// 0.85-1.17 client CPU-s per GiB where node:http takes 1.25-1.71 (its parser copies every piece of a
// body into a new buffer), and a small request costs ~90 us of client CPU instead of ~150; but
// loading it and making a first request takes 0.13-0.18 s instead of ~0.04, which a short CLI
// command never earns back. node:http sends a 4 MiB body a little cheaper (0.38-0.45 vs 0.52-0.56
// CPU-s per GiB) and, unlike undici over HTTP/1.1, can wait for `100 Continue`; background probes
// need a socket that never keeps the process alive, which undici's pool does not offer per request.
import http from 'node:http'
import https from 'node:https'
import type { Dispatcher, Pool } from 'undici'
import { type BufferPool, ServerError } from '../protocol'

export interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

/** How one request goes out: pooled, or (background probes) on a connection of its own that never keeps the process alive. */
export interface Via {
  fresh: boolean
  timeoutMs: number
  /** Where a successful answer's body goes (memory given back by the caller once it is done with it); else new memory. */
  into?: BufferPool
  /** Most bytes a successful answer may carry (a range's length): a longer one is an error, and is never allocated. */
  maxBody?: number
}

export interface TransportOptions {
  /** Longest silence allowed on a connection (connect, first byte, between bytes). */
  timeoutMs: number
  /** PEM of a CA to trust for https URLs. */
  ca?: string | Buffer
  maxSockets: number
  /** Pooled requests through undici (loaded at the first one): for long-lived processes. */
  undici?: boolean
}

/** Largest answer read into a buffer sized from its content-length before the bytes arrive. */
export const MAX_PREALLOCATE = 256 * 1024 * 1024

/**
 * Bodies from this size on wait for the server's `100 Continue`: a refusal (expired session, disk
 * full) then comes as an answer before the body is sent, not as a connection the server closed on
 * an unread upload, which looks like a dead server. One round trip; small bodies skip it.
 */
const EXPECT_CONTINUE_MIN = 64 * 1024

const UNDICI_TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

export class ServerTransport {
  private pool: Promise<Pool> | null = null
  private closed = false
  private readonly agent: http.Agent
  private readonly secure: boolean

  constructor(private readonly base: URL, private readonly opts: TransportOptions) {
    this.secure = base.protocol === 'https:'
    const agentOptions = { keepAlive: true, maxSockets: opts.maxSockets, ca: opts.ca }
    this.agent = this.secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions)
  }

  close(): void {
    this.closed = true
    this.pool?.then((p) => p.destroy()).catch(() => undefined)
    this.agent.destroy()
  }

  send(method: string, path: string, body: Buffer | string | undefined, headers: Record<string, string>, via: Via): Promise<Answer> {
    const length = body === undefined ? 0 : Buffer.byteLength(body)
    const all: Record<string, string> = { ...headers }
    if (body !== undefined) {
      all['content-length'] = String(length)
      if (!all['content-type']) all['content-type'] = typeof body === 'string' ? 'application/json' : 'application/octet-stream'
    }
    if (this.opts.undici && !via.fresh && length < EXPECT_CONTINUE_MIN && !this.closed) return this.viaUndici(method, path, body, all, via)
    return this.viaNodeHttp(method, path, body, all, via, length >= EXPECT_CONTINUE_MIN)
  }

  private undiciPool(): Promise<Pool> {
    this.pool ??= import('undici').then(({ Pool }) => new Pool(this.base.origin, {
      connections: this.opts.maxSockets,
      connect: { timeout: this.opts.timeoutMs, ...(this.opts.ca ? { ca: this.opts.ca } : {}) },
    }))
    return this.pool
  }

  private async viaUndici(method: string, path: string, body: Buffer | string | undefined, headers: Record<string, string>, via: Via): Promise<Answer> {
    const pool = await this.undiciPool()
    return new Promise((resolve, reject) => {
      let answer: BodyCollector | null = null
      const handler: Dispatcher.DispatchHandler = {
        onRequestStart: () => undefined, // its presence marks the handler as undici 7's kind
        onResponseStart: (_c, status, h) => {
          if (status >= 200) answer = new BodyCollector(status, h, method, via)
        },
        onResponseData: (_c, chunk) => answer?.add(chunk),
        onResponseEnd: () => {
          if (!answer) reject(new UnreachableError(this.base.origin, new Error('no answer')))
          else settle(answer, this.base.origin, resolve, reject)
        },
        onResponseError: (_c, err) => reject(this.transportError(err, via.timeoutMs)),
      }
      pool.dispatch({ method, path, headers, body: body ?? null, headersTimeout: via.timeoutMs, bodyTimeout: via.timeoutMs }, handler)
    })
  }

  private viaNodeHttp(method: string, path: string, body: Buffer | string | undefined, headers: Record<string, string>, via: Via, expectContinue: boolean): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const mod = this.secure ? https : http
      if (expectContinue) headers.expect = '100-continue'
      const req = mod.request(
        {
          protocol: this.base.protocol, hostname: this.base.hostname, port: this.base.port, method, path, headers,
          ...(via.fresh ? { agent: false, ca: this.opts.ca } : { agent: this.agent }),
        },
        (res) => {
          const answer = new BodyCollector(res.statusCode ?? 0, res.headers, method, via)
          res.on('data', (d: Buffer) => answer.add(d))
          res.on('error', reject)
          res.on('end', () => {
            // Answered without asking for the body: this request can never be finished on its socket.
            if (expectContinue && !bodySent) req.destroy()
            settle(answer, this.base.origin, resolve, reject)
          })
          res.on('aborted', () => reject(new ServerError(res.statusCode ?? 0, 'unknown', 'answer aborted', this.base.origin)))
        },
      )
      if (via.fresh) req.on('socket', (s) => s.unref())
      req.setTimeout(via.timeoutMs, () => req.destroy(new TimeoutError(this.base.origin, via.timeoutMs)))
      req.on('error', (err) => reject(this.transportError(err, via.timeoutMs)))
      let bodySent = !expectContinue
      if (expectContinue) {
        req.flushHeaders()
        req.once('continue', () => {
          bodySent = true
          req.end(body)
        })
      } else req.end(body)
    })
  }

  private transportError(err: Error, timeoutMs: number): Error {
    if (err instanceof TimeoutError) return err
    if (UNDICI_TIMEOUTS.has((err as NodeJS.ErrnoException).code ?? '')) return new TimeoutError(this.base.origin, timeoutMs)
    return new UnreachableError(this.base.origin, err)
  }
}

/**
 * An answer's body as it arrives: one buffer filled in place when the length is known (and sane),
 * pieces otherwise; a successful answer longer than `via.maxBody` is refused and never kept. Both
 * transports and the S3 member read bodies through it.
 */
export class BodyCollector {
  private readonly expected: number
  private readonly whole: Buffer | null
  private readonly parts: Buffer[] = []
  /** Most bytes kept (a successful answer to a range request); beyond it nothing more is kept. */
  private readonly limit: number
  received = 0

  constructor(readonly status: number, readonly headers: Record<string, string | string[] | undefined>, private readonly method: string, via: Pick<Via, 'into' | 'maxBody'>) {
    this.expected = Number(headers['content-length'])
    const ok = status >= 200 && status < 300
    this.limit = ok && via.maxBody !== undefined ? via.maxBody : Infinity
    // Capped: a hostile or broken server must not make us allocate whatever its header claims.
    const preallocate = method !== 'HEAD' && Number.isSafeInteger(this.expected) && this.expected > 0 && this.expected <= Math.min(MAX_PREALLOCATE, this.limit)
    const pooled = ok ? via.into : undefined
    this.whole = preallocate ? (pooled ? pooled.take(this.expected) : Buffer.allocUnsafe(this.expected)) : null
  }

  /** Longer than allowed already (claimed or received): finish() will refuse it, so the caller may stop reading. */
  get tooLong(): boolean {
    return this.method !== 'HEAD' && Math.max(Number.isFinite(this.expected) ? this.expected : 0, this.received) > this.limit
  }

  add(d: Buffer): void {
    if (this.received + d.length > this.limit) this.parts.length = 0 // refused in finish: nothing more is kept
    else if (this.whole && this.received + d.length <= this.expected) d.copy(this.whole, this.received)
    else this.parts.push(d)
    this.received += d.length
  }

  /** The answer, or the reason it is not whole. */
  finish(origin: string): Answer | ServerError {
    const claimed = Number.isFinite(this.expected) ? this.expected : this.received
    if (this.method !== 'HEAD' && Math.max(claimed, this.received) > this.limit) {
      return new ServerError(this.status, 'unknown', `an answer of ${Math.max(claimed, this.received)} bytes to a request for at most ${this.limit}`, origin)
    }
    if (this.method !== 'HEAD' && Number.isFinite(this.expected) && this.received !== this.expected) {
      return new ServerError(this.status, 'unknown', `short answer: ${this.received} of ${this.expected} bytes`, origin)
    }
    const body = this.whole ?? (this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts))
    return { status: this.status, headers: this.headers, body }
  }
}

function settle(answer: BodyCollector, origin: string, resolve: (a: Answer) => void, reject: (e: Error) => void): void {
  const done = answer.finish(origin)
  if (done instanceof ServerError) reject(done)
  else resolve(done)
}

/** The server did not answer within the timeout (connect, first byte or between bytes). */
export class TimeoutError extends Error {
  constructor(readonly server: string, readonly timeoutMs: number) {
    super(`${server}: no answer within ${timeoutMs} ms`)
    this.name = 'TimeoutError'
  }
}

/** The connection failed (refused, reset, DNS, TLS). */
export class UnreachableError extends Error {
  constructor(readonly server: string, override readonly cause: Error) {
    super(`${server}: ${cause.message}`)
    this.name = 'UnreachableError'
  }
}
