// One storage server as the client sees it: login, signed requests, session renewal. Each request's
// trip (HTTP clients, timeouts) is server-transport.ts's. Single attempts only; retries, health and
// placement live in the pool above it.
import { randomBytes } from 'node:crypto'
import {
  BlobListBody, type BufferPool, ChallengeBody, ErrorBody, HEADERS, ByteRange, HealthBody, LoginBody, ROUTES, ScrubStatus, ServerError, StatsBody, VerifyBody, serverErrorOf,
  authMessage, clientProof, rangeHeader, serverSignature, sessionKey, sha256Hex, signRequest,
} from '../protocol'
import { loginKeys } from './login-keys'
import type { MemberClient } from './member-client'
import { Answer, ServerTransport, Via } from './server-transport'

export interface ServerClientOptions {
  url: string
  user: string
  password: string
  /** Longest silence allowed on a connection (connect, first byte, between bytes). */
  timeoutMs?: number
  /** PEM of a CA to trust for https URLs (pinning a private CA). */
  ca?: string | Buffer
  maxSockets?: number
  /**
   * A long-running process (the mount daemon): pooled requests go through undici, cheaper per
   * request and per byte received but 0.1 s slower to start, which a short command never earns back
   * (server-transport.ts).
   */
  longLived?: boolean
}

interface Session {
  id: string
  key: Buffer
  /** The user's salt and scrypt parameters, as the login's challenge gave them. */
  salt: Buffer
  params: { N: number; r: number; p: number }
}

/** Longest silence on a call (connect, first byte, between bytes) unless configured. */
export const DEFAULT_TIMEOUT_MS = 30_000

const SESSION_RETRY_CODES = new Set(['session-expired'])

export class ServerClient implements MemberClient {
  readonly kind = 'server' as const
  readonly url: string
  readonly user: string
  private readonly password: string
  private readonly base: URL
  private readonly transport: ServerTransport
  private readonly timeoutMs: number
  private session: Promise<Session> | null = null
  /** The server's stable id, known after the first health call. */
  id: string | undefined

  constructor(opts: ServerClientOptions) {
    this.base = new URL(opts.url)
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:') throw new Error(`unsupported server URL ${opts.url}`)
    this.url = this.base.origin
    this.user = opts.user
    this.password = opts.password
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
    this.transport = new ServerTransport(this.base, { timeoutMs: this.timeoutMs, ca: opts.ca, maxSockets: opts.maxSockets ?? 16, undici: opts.longLived })
  }

  close(): void {
    this.transport.close()
  }

  async health(): Promise<HealthBody> {
    return this.healthOf(await this.raw('GET', ROUTES.health))
  }

  async probe(timeoutMs: number): Promise<HealthBody> {
    return this.healthOf(await this.raw('GET', ROUTES.health, undefined, { connection: 'close' }, { fresh: true, timeoutMs }))
  }

  private healthOf(a: Answer): HealthBody {
    const body = this.json<HealthBody>(this.expectOk(a))
    if (typeof body?.id !== 'string' || body.id.length === 0) throw new ServerError(a.status, 'unknown', 'health answer has no server id', this.url)
    this.id = body.id
    return body
  }

  async stats(): Promise<StatsBody> {
    return this.json<StatsBody>(await this.signed('GET', ROUTES.stats))
  }

  /** Stores a blob; the server checks that `id` is the SHA-256 of `data`. */
  async putBlob(id: string, data: Buffer): Promise<'created' | 'exists'> {
    const a = await this.signed('PUT', ROUTES.blob(id), data, id)
    return a.status === 201 ? 'created' : 'exists'
  }

  /** The blob's bytes (or the range of them), or null when the server does not hold it. */
  async getBlob(id: string, range?: ByteRange, into?: BufferPool): Promise<Buffer | null> {
    const headers = range ? { range: rangeHeader(range) } : undefined
    // A range's answer is at most its length: a server claiming more is refused before anything is allocated.
    const a = await this.signed('GET', ROUTES.blob(id), undefined, undefined, headers, [404], { into, maxBody: range ? range.end - range.start : undefined })
    return a.status === 404 ? null : a.body
  }

  /** The blob's size, or null when absent. */
  async headBlob(id: string): Promise<number | null> {
    const a = await this.signed('HEAD', ROUTES.blob(id), undefined, undefined, undefined, [404])
    return a.status === 404 ? null : Number(a.headers['content-length'])
  }

  /** True when the blob existed and was removed. */
  async deleteBlob(id: string): Promise<boolean> {
    const a = await this.signed('DELETE', ROUTES.blob(id), undefined, undefined, undefined, [404])
    return a.status !== 404
  }

  /** Which of these ids the server holds. */
  async have(ids: string[]): Promise<string[]> {
    const a = await this.signed('POST', ROUTES.blobsHave, Buffer.from(JSON.stringify({ ids })))
    return this.json<{ have: string[] }>(a).have
  }

  /** Has the server hash its copies of these ids (at most MAX_VERIFY_IDS); bad ones are quarantined there. */
  async verifyBlobs(ids: string[]): Promise<VerifyBody> {
    return this.json<VerifyBody>(await this.signed('POST', ROUTES.blobsVerify, Buffer.from(JSON.stringify({ ids }))))
  }

  /** Starts a scrub of this user's blobs on the server now (unless one runs); its status. */
  async scrub(): Promise<ScrubStatus> {
    return this.json<ScrubStatus>(await this.signed('POST', ROUTES.scrub))
  }

  async scrubStatus(): Promise<ScrubStatus> {
    return this.json<ScrubStatus>(await this.signed('GET', ROUTES.scrub))
  }

  async listBlobs(after?: string, limit?: number): Promise<BlobListBody> {
    const q = new URLSearchParams()
    if (after) q.set('after', after)
    if (limit) q.set('limit', String(limit))
    const qs = q.toString()
    return this.json<BlobListBody>(await this.signed('GET', ROUTES.blobs + (qs ? `?${qs}` : '')))
  }

  async getRecord(name: string): Promise<{ version: number; value: Buffer } | null> {
    const a = await this.signed('GET', ROUTES.record(name), undefined, undefined, undefined, [404])
    if (a.status === 404) return null
    return { version: Number(a.headers[HEADERS.version]), value: a.body }
  }

  /** Compare-and-swap: writes only if the stored version is `expectVersion` (0: absent). Returns the new version. */
  async putRecord(name: string, expectVersion: number, value: Buffer): Promise<number> {
    const a = await this.signed('PUT', ROUTES.record(name), value, undefined, { [HEADERS.expectVersion]: String(expectVersion) })
    return this.json<{ version: number }>(a).version
  }

  async deleteRecord(name: string, expectVersion: number): Promise<void> {
    await this.signed('DELETE', ROUTES.record(name), undefined, undefined, { [HEADERS.expectVersion]: String(expectVersion) })
  }

  /** Logs in now (normally done on the first signed request). Throws ServerError 401 on a wrong password. */
  async login(): Promise<void> {
    this.session = null
    await this.currentSession()
  }

  private currentSession(): Promise<Session> {
    if (!this.session) {
      this.session = this.doLogin()
      this.session.catch(() => (this.session = null))
    }
    return this.session
  }

  private async doLogin(): Promise<Session> {
    const clientNonce = randomBytes(24).toString('base64')
    const ch = this.json<ChallengeBody>(await this.expectOk(await this.raw('POST', ROUTES.challenge, JSON.stringify({ user: this.user, clientNonce }))))
    const keys = await loginKeys(this.password, Buffer.from(ch.salt, 'base64'), { N: ch.N, r: ch.r, p: ch.p })
    const message = authMessage(this.user, clientNonce, ch.serverNonce)
    const proof = clientProof(keys, message).toString('base64')
    const login = this.json<LoginBody>(
      await this.expectOk(await this.raw('POST', ROUTES.login, JSON.stringify({ user: this.user, clientNonce, serverNonce: ch.serverNonce, proof }))),
    )
    if (serverSignature(keys.serverKey, message).toString('base64') !== login.serverSignature) {
      throw new ServerError(401, 'unauthorized', 'the server could not prove it knows this user (wrong server or tampered users file)', this.url)
    }
    return { id: login.session, key: sessionKey(keys.clientKey, message), salt: Buffer.from(ch.salt, 'base64'), params: { N: ch.N, r: ch.r, p: ch.p } }
  }

  /**
   * Changes this user's login password on the server: `replace` false adds `newPassword` beside the
   * current one (both log in), true makes it the only one. Keeps the salt and parameters.
   */
  async changePassword(newPassword: string, replace: boolean): Promise<void> {
    const session = await this.currentSession()
    const keys = await loginKeys(newPassword, session.salt, session.params)
    const body = { storedKey: keys.storedKey.toString('base64'), serverKey: keys.serverKey.toString('base64'), replace }
    await this.signed('POST', ROUTES.password, Buffer.from(JSON.stringify(body)))
  }

  /** A signed request; logs in again once when the server forgot the session (e.g. it restarted). */
  private async signed(
    method: string, path: string, body?: Buffer, contentSha256?: string,
    headers?: Record<string, string>, okStatuses: number[] = [], answerInto: Pick<Via, 'into' | 'maxBody'> = {},
  ): Promise<Answer> {
    for (let attempt = 0; ; attempt++) {
      const session = await this.currentSession()
      const sha = body ? (contentSha256 ?? sha256Hex(body)) : ''
      const all: Record<string, string> = { ...headers, [HEADERS.authorization]: signRequest(session.id, session.key, method, path, sha) }
      if (body) all[HEADERS.contentSha256] = sha
      const a = await this.raw(method, path, body, all, { fresh: false, timeoutMs: this.timeoutMs, ...answerInto })
      if (a.status === 401 && attempt === 0) {
        const code = method === 'HEAD' ? 'session-expired' : this.errorBody(a)?.error
        if (code && SESSION_RETRY_CODES.has(code)) {
          if (this.session) {
            const current = await this.session.catch(() => null)
            if (current === session) this.session = null
          }
          continue
        }
      }
      return okStatuses.includes(a.status) ? a : this.expectOk(a)
    }
  }

  private raw(method: string, path: string, body?: Buffer | string, headers: Record<string, string> = {}, via: Via = { fresh: false, timeoutMs: this.timeoutMs }): Promise<Answer> {
    return this.transport.send(method, path, body, headers, via)
  }

  private expectOk(a: Answer): Answer {
    if (a.status >= 200 && a.status < 300) return a
    const e = this.errorBody(a)
    throw serverErrorOf(a.status, e, this.url)
  }

  private errorBody(a: Answer): ErrorBody | null {
    try {
      const parsed = JSON.parse(a.body.toString('utf8')) as ErrorBody
      return typeof parsed?.error === 'string' ? parsed : null
    } catch {
      return null
    }
  }

  private json<T>(a: Answer): T {
    try {
      return JSON.parse(a.body.toString('utf8')) as T
    } catch {
      throw new ServerError(a.status, 'unknown', 'answer is not JSON', this.url)
    }
  }
}
