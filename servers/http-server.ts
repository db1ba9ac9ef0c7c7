// The HTTP(S) front: dispatch, authentication of signed routes, error answers, timeouts and a
// clean shutdown (stop accepting, let in-flight requests finish for a grace period, then abort them;
// aborted uploads remove their temp files).
import http, { IncomingMessage, ServerResponse } from 'node:http'
import https from 'node:https'
import { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { HEADERS } from '../src/protocol'
import { Authenticator } from './auth'
import { ClientGoneError, HttpError } from './errors'
import { sendError } from './respond'
import { Resource, match } from './router'
import { ServerMetrics } from './metrics'
import { SpaceGuard } from './space'
import { TrafficStats } from './stats'

export interface FrontOptions {
  host: string
  port: number
  tls?: { cert: Buffer; key: Buffer }
  requestTimeoutMs: number
  log: (line: string) => void
  metrics?: ServerMetrics
}

const SHA_RE = /^[0-9a-f]{64}$/

export class HttpFront {
  readonly server: http.Server | https.Server
  private readonly active = new Set<Promise<void>>()
  private closing = false

  constructor(
    private readonly resources: Resource[],
    private readonly auth: Authenticator,
    private readonly traffic: TrafficStats,
    private readonly space: SpaceGuard,
    private readonly opts: FrontOptions,
  ) {
    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      const p = this.handle(req, res)
      this.active.add(p)
      void p.finally(() => this.active.delete(p))
    }
    this.server = opts.tls ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, onRequest) : http.createServer(onRequest)
    // `Expect: 100-continue`: the body is asked for only once the request passed every check that
    // needs no body (route, signature, free space), so a refusal never tears down an upload.
    this.server.on('checkContinue', onRequest)
    this.server.requestTimeout = 0 // long uploads are fine while bytes keep coming: the body reader has an idle timeout
    this.server.headersTimeout = Math.min(60_000, Math.max(1000, opts.requestTimeoutMs))
    this.server.timeout = 2 * opts.requestTimeoutMs // idle socket backstop (e.g. a reader that stopped reading)
    this.server.keepAliveTimeout = 30_000
    this.server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n')
      else socket.destroy()
    })
  }

  listen(): Promise<string> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', reject)
        const a = this.server.address() as AddressInfo
        const host = a.family === 'IPv6' ? `[${a.address}]` : a.address
        resolve(`${this.opts.tls ? 'https' : 'http'}://${host}:${a.port}`)
      })
    })
  }

  async close(graceMs: number): Promise<void> {
    this.closing = true
    const closed = new Promise<void>((r) => this.server.close(() => r()))
    this.server.closeIdleConnections()
    const settle = () => Promise.allSettled([...this.active])
    await Promise.race([settle(), sleep(graceMs, undefined, { ref: false })])
    this.server.closeAllConnections() // aborts what is still running; uploads clean up after themselves
    await Promise.race([settle(), sleep(5000, undefined, { ref: false })])
    await Promise.race([closed, sleep(1000, undefined, { ref: false })])
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const addr = req.socket.remoteAddress ?? 'unknown'
    if (this.closing) res.shouldKeepAlive = false
    let route = 'unknown'
    if (this.opts.metrics) {
      const t0 = performance.now()
      const metrics = this.opts.metrics
      res.once('finish', () => metrics.observe(route, req.method ?? '', res.statusCode, (performance.now() - t0) / 1000))
    }
    try {
      const m = match(this.resources, req.method ?? 'GET', req.url ?? '/')
      route = m.resource.name
      let user = ''
      let storedKey: Buffer | undefined
      if (m.resource.auth) {
        ;({ user, storedKey } = await this.auth.verify(req, addr))
        this.traffic.of(user).requestsServed++
        const sha = req.headers[HEADERS.contentSha256]
        const expectsBody = m.resource.bodyMethods?.includes(req.method ?? '') ?? false
        const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined
        if (sha !== undefined && (typeof sha !== 'string' || !SHA_RE.test(sha))) {
          throw new HttpError('bad-request', `${HEADERS.contentSha256}: 64 lowercase hex digits`)
        }
        if ((expectsBody || hasBody) && sha === undefined) {
          throw new HttpError('bad-request', `a request with a body must carry ${HEADERS.contentSha256}`)
        }
        if (hasBody) res.once('close', await this.space.admit(Number(req.headers['content-length'] ?? 0), m.resource.keepsReserve ?? false))
      }
      if (req.headers.expect?.toLowerCase() === '100-continue') res.writeContinue()
      await m.handler({ req, res, params: m.params, query: m.query, addr, user, storedKey })
    } catch (err) {
      this.fail(req, res, err)
    }
  }

  private fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    if (err instanceof ClientGoneError) {
      res.destroy()
      return
    }
    let e: HttpError
    if (err instanceof HttpError) e = err
    else {
      this.opts.log(`${req.method} ${(req.url ?? '').split('?')[0]}: ${(err as Error)?.message ?? String(err)}`)
      e = new HttpError('internal', 'internal server error')
    }
    if (res.headersSent) {
      res.destroy()
      return
    }
    // A body left unread (refused early, timed out, too large) is not drained: close the connection.
    sendError(res, e, !req.complete || this.closing)
  }
}
