// Login (challenge + proof -> session) and the check of every signed request. Nothing secret is
// ever logged. Unknown users get a challenge shaped exactly like a real one.
import { createHmac, randomBytes } from 'node:crypto'
import { IncomingMessage } from 'node:http'
import {
  AUTH_SCRYPT, ChallengeBody, HEADERS, LoginBody, SIGNATURE_WINDOW_MS, Verifier, authMessage, checkProof, checkSignature,
  isUserName, parseAuthorization, serverSignature, sessionKey,
} from '../src/protocol'
import { HttpError } from './errors'
import { LoginLimiter } from './rate-limit'
import { UserTable } from './users'

const CHALLENGE_TTL_MS = 30_000
const MAX_CHALLENGES = 10_000
const MAX_SESSIONS = 100_000
const MAX_NONCES = 2_000_000
/** How stale the users file may be when checking a signed request (logins always re-check). */
const USERS_MAX_AGE_MS = 1000

interface Challenge {
  user: string
  clientNonce: string
  expiresAt: number
}

interface Session {
  user: string
  key: Buffer
  storedKey: Buffer
  expiresAt: number
}

export interface AuthOptions {
  secret: Buffer
  sessionTtlMs: number
}

const NONCE_RE = /^[A-Za-z0-9+/=_-]{8,128}$/

export class Authenticator {
  private readonly challenges = new Map<string, Challenge>()
  private readonly sessions = new Map<string, Session>()
  /** session+nonce -> time after which the request is stale anyway and the nonce can be forgotten. */
  private readonly nonces = new Map<string, number>()
  private readonly sweeper: NodeJS.Timeout

  constructor(
    private readonly users: UserTable,
    readonly limiter: LoginLimiter,
    private readonly opts: AuthOptions,
  ) {
    this.sweeper = setInterval(() => this.sweep(), 10_000)
    this.sweeper.unref()
  }

  close(): void {
    clearInterval(this.sweeper)
  }

  async challenge(body: unknown, addr: string): Promise<ChallengeBody> {
    this.limiter.check(addr)
    const { user, clientNonce } = (body ?? {}) as { user?: unknown; clientNonce?: unknown }
    if (typeof user !== 'string' || !isUserName(user)) throw new HttpError('bad-request', 'user: not a valid user name')
    this.limiter.check(addr, user)
    if (typeof clientNonce !== 'string' || !NONCE_RE.test(clientNonce)) throw new HttpError('bad-request', 'clientNonce: 8 to 128 base64 characters')
    const v = (await this.users.get(user))?.[0]
    const salt = v ? v.salt : createHmac('sha256', this.opts.secret).update(`edfs-fake-salt\n${user}`).digest()
    const params = v ? v.params : AUTH_SCRYPT
    const serverNonce = randomBytes(24).toString('base64')
    const now = Date.now()
    for (const [k, c] of this.challenges) {
      if (this.challenges.size < MAX_CHALLENGES && c.expiresAt > now) break
      this.challenges.delete(k)
    }
    this.challenges.set(serverNonce, { user, clientNonce, expiresAt: now + CHALLENGE_TTL_MS })
    return { salt: salt.toString('base64'), N: params.N, r: params.r, p: params.p, serverNonce }
  }

  async login(body: unknown, addr: string): Promise<LoginBody> {
    this.limiter.check(addr)
    const { user, clientNonce, serverNonce, proof } = (body ?? {}) as Record<string, unknown>
    if (typeof user !== 'string' || typeof clientNonce !== 'string' || typeof serverNonce !== 'string' || typeof proof !== 'string') {
      throw new HttpError('bad-request', 'login needs user, clientNonce, serverNonce and proof')
    }
    const named = isUserName(user) ? user : undefined
    this.limiter.check(addr, named)
    const ch = this.challenges.get(serverNonce)
    this.challenges.delete(serverNonce)
    const now = Date.now()
    const fail = (why: string): never => {
      this.limiter.failure(addr, named)
      throw new HttpError('unauthorized', why)
    }
    if (!ch || ch.expiresAt < now || ch.user !== user || ch.clientNonce !== clientNonce) {
      fail('unknown or expired challenge; ask for a new one')
    }
    const message = authMessage(user, clientNonce, serverNonce)
    let v: Verifier | undefined
    let clientKey: Buffer | null = null
    for (const candidate of (await this.users.get(user)) ?? []) {
      clientKey = checkProof(candidate, message, Buffer.from(proof, 'base64'))
      if (clientKey) {
        v = candidate
        break
      }
    }
    if (!v || !clientKey) return fail('wrong user name or password')
    this.limiter.success(addr, user)
    let id: string
    do id = randomBytes(16).toString('hex')
    while (this.sessions.has(id))
    for (const [k, s] of this.sessions) {
      if (this.sessions.size < MAX_SESSIONS && s.expiresAt > now) break
      this.sessions.delete(k)
    }
    const expiresAt = now + this.opts.sessionTtlMs
    this.sessions.set(id, { user, key: sessionKey(clientKey, message), storedKey: v.storedKey, expiresAt })
    return { session: id, expiresAt, serverSignature: serverSignature(v.serverKey, message).toString('base64') }
  }

  /**
   * A signed-in user changes their own password: the new StoredKey and ServerKey (made with their
   * current salt and parameters) replace all others (`replace`), or are added beside the password
   * this session logged in with (which stays; a third one, left by an interrupted change, goes).
   */
  async changePassword(user: string, body: unknown, sessionStoredKey: Buffer): Promise<void> {
    const { storedKey, serverKey, replace } = (body ?? {}) as Record<string, unknown>
    const key = (x: unknown) => typeof x === 'string' && Buffer.from(x, 'base64').length === 32 && Buffer.from(x, 'base64').toString('base64') === x
    if (!key(storedKey) || !key(serverKey) || typeof replace !== 'boolean') {
      throw new HttpError('bad-request', 'the body must be {storedKey, serverKey: 32 bytes base64 each, replace: boolean}')
    }
    await this.users.changeKeys(user, { storedKey: storedKey as string, serverKey: serverKey as string }, replace, sessionStoredKey.toString('base64'))
  }

  /** Checks a signed request's headers; returns the user and the StoredKey its session logged in with. The body hash is checked by the body reader. */
  async verify(req: IncomingMessage, addr: string): Promise<{ user: string; storedKey: Buffer }> {
    this.limiter.check(addr)
    const header = req.headers[HEADERS.authorization]
    if (!header) throw new HttpError('unauthorized', 'this route needs a signed request (authorization header missing)')
    const fields = parseAuthorization(header)
    if (!fields) {
      this.limiter.failure(addr)
      throw new HttpError('unauthorized', 'malformed authorization header')
    }
    const now = Date.now()
    const s = this.sessions.get(fields.session)
    if (!s || s.expiresAt <= now) {
      if (s) this.sessions.delete(fields.session)
      throw new HttpError('session-expired', 'unknown or expired session; log in again')
    }
    this.limiter.check(addr, s.user)
    const sha = req.headers[HEADERS.contentSha256]
    const contentSha = typeof sha === 'string' ? sha : ''
    if (!checkSignature(fields, s.key, req.method ?? '', req.url ?? '', contentSha)) {
      this.limiter.failure(addr, s.user)
      throw new HttpError('unauthorized', 'bad request signature')
    }
    if (Math.abs(now - fields.ts) > SIGNATURE_WINDOW_MS) {
      throw new HttpError('stale-request', `request time is more than ${SIGNATURE_WINDOW_MS / 1000} s away from the server clock`)
    }
    const nonceKey = `${fields.session}:${fields.nonce}`
    if (this.nonces.has(nonceKey)) throw new HttpError('replayed', 'this request was already received')
    if (this.nonces.size >= MAX_NONCES) this.sweep()
    if (this.nonces.size >= MAX_NONCES) throw new HttpError('unavailable', 'too many requests in flight; retry shortly', {}, { 'retry-after': '1' })
    this.nonces.set(nonceKey, fields.ts + SIGNATURE_WINDOW_MS)
    const vs = await this.users.get(s.user, USERS_MAX_AGE_MS)
    if (!vs || !vs.some((v) => v.storedKey.equals(s.storedKey))) {
      this.sessions.delete(fields.session) // user removed or password changed: log in again (and fail)
      throw new HttpError('session-expired', 'the session ended: the user changed on the server; log in again')
    }
    this.limiter.success(addr, s.user)
    return { user: s.user, storedKey: s.storedKey }
  }

  private sweep(): void {
    const now = Date.now()
    for (const [k, until] of this.nonces) if (until < now) this.nonces.delete(k)
    for (const [k, c] of this.challenges) if (c.expiresAt < now) this.challenges.delete(k)
    for (const [k, s] of this.sessions) if (s.expiresAt < now) this.sessions.delete(k)
  }
}
