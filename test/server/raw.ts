// Hand-made requests for tests that need to break the protocol on purpose (bad ids, stale or
// replayed signatures, half bodies, other source addresses). Not a test file itself.
import { createHmac, randomBytes } from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import {
  AUTH_SCHEME, ChallengeBody, LoginBody, ROUTES, authMessage, canonicalRequest, clientProof, deriveKeys, sessionKey, sha256Hex,
} from '../../src/protocol'

export interface RawAnswer {
  status: number
  headers: http.IncomingHttpHeaders
  body: Buffer
  json: () => any // eslint-disable-line @typescript-eslint/no-explicit-any
}

export interface RawOptions {
  headers?: Record<string, string | number>
  body?: Buffer | string
  localAddress?: string
  ca?: string | Buffer
  /** Write these bytes, then keep the request open without ending it. */
  stallAfter?: Buffer
  /** Send the body in chunked transfer encoding (no content-length). */
  chunked?: boolean
}

export function raw(base: string, method: string, pathq: string, opts: RawOptions = {}): Promise<RawAnswer> {
  const url = new URL(base)
  const mod = url.protocol === 'https:' ? https : http
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...opts.headers }
    if (opts.body !== undefined && !opts.chunked) headers['content-length'] = Buffer.byteLength(opts.body)
    let answered = false
    const req = mod.request(
      { hostname: url.hostname, port: url.port, method, path: pathq, headers, localAddress: opts.localAddress, ca: opts.ca, agent: false },
      (res) => {
        answered = true
        const parts: Buffer[] = []
        res.on('data', (d: Buffer) => parts.push(d))
        res.on('error', () => undefined)
        const done = () => {
          const body = Buffer.concat(parts)
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body.toString()) })
        }
        res.on('end', done)
        res.on('aborted', done)
      },
    )
    req.on('error', (err) => {
      if (!answered) reject(err)
    })
    if (opts.stallAfter) {
      req.write(opts.stallAfter)
      return
    }
    if (opts.chunked && opts.body !== undefined) {
      const b = Buffer.from(opts.body)
      for (let off = 0; off < b.length; off += 65536) req.write(b.subarray(off, off + 65536))
      req.end()
      return
    }
    req.end(opts.body)
  })
}

export interface Session {
  base: string
  session: string
  key: Buffer
  localAddress?: string
}

export async function login(base: string, user: string, password: string, localAddress?: string): Promise<Session> {
  const clientNonce = randomBytes(24).toString('base64')
  const ch = await raw(base, 'POST', ROUTES.challenge, { body: JSON.stringify({ user, clientNonce }), localAddress })
  if (ch.status !== 200) throw Object.assign(new Error(`challenge: ${ch.status} ${ch.body}`), { status: ch.status, answer: ch })
  const c = ch.json() as ChallengeBody
  const keys = await deriveKeys(password, Buffer.from(c.salt, 'base64'), { N: c.N, r: c.r, p: c.p })
  const message = authMessage(user, clientNonce, c.serverNonce)
  const proof = clientProof(keys, message).toString('base64')
  const a = await raw(base, 'POST', ROUTES.login, { body: JSON.stringify({ user, clientNonce, serverNonce: c.serverNonce, proof }), localAddress })
  if (a.status !== 200) throw Object.assign(new Error(`login: ${a.status} ${a.body}`), { status: a.status, answer: a })
  const l = a.json() as LoginBody
  return { base, session: l.session, key: sessionKey(keys.clientKey, message), localAddress }
}

export interface SignOptions {
  ts?: number
  nonce?: string
  /** x-edfs-content-sha256; default: the body's hash when there is a body. */
  sha?: string | null
  key?: Buffer
}

export function authHeader(s: Session, method: string, pathq: string, sha: string, o: SignOptions = {}): string {
  const ts = o.ts ?? Date.now()
  const nonce = o.nonce ?? randomBytes(16).toString('hex')
  const sig = createHmac('sha256', o.key ?? s.key).update(canonicalRequest(method, pathq, ts, nonce, sha)).digest('hex')
  return `${AUTH_SCHEME} session=${s.session},ts=${ts},nonce=${nonce},sig=${sig}`
}

/** A signed request (signature options allow breaking it on purpose). */
export function signed(s: Session, method: string, pathq: string, opts: RawOptions & SignOptions = {}): Promise<RawAnswer> {
  const body = opts.body ?? opts.stallAfter
  const sha = opts.sha === null ? undefined : (opts.sha ?? (opts.body !== undefined ? sha256Hex(Buffer.from(opts.body)) : undefined))
  const headers: Record<string, string | number> = { ...opts.headers, authorization: authHeader(s, method, pathq, sha ?? '', opts) }
  if (sha !== undefined) headers['x-edfs-content-sha256'] = sha
  void body
  return raw(s.base, method, pathq, { ...opts, headers, localAddress: opts.localAddress ?? s.localAddress })
}
