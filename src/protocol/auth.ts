// Authentication without sending the password: a SCRAM-style proof (RFC 5802's key schedule over
// scrypt) gives a session key, and every request is signed with it (HMAC-SHA256 over method,
// path, time, a nonce and the body's SHA-256). A server stores only StoredKey and ServerKey: a
// stolen users file lets nobody log in without first cracking the scrypt hash.
import { createHash, createHmac, randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto'

export interface ScryptParams {
  N: number
  r: number
  p: number
}

/** Cost of the server-side password hash. 2^15 × 8 × 128 B = 32 MiB and ~80 ms per login. */
export const AUTH_SCRYPT: ScryptParams = { N: 2 ** 15, r: 8, p: 1 }
/** A signed request older or newer than this is refused; nonces are remembered this long. */
export const SIGNATURE_WINDOW_MS = 60_000
export const AUTH_SCHEME = 'EDFS-HMAC-SHA256'

const hmac = (key: Buffer, data: string | Buffer): Buffer => createHmac('sha256', key).update(data).digest()
export const sha256 = (data: string | Buffer): Buffer => createHash('sha256').update(data).digest()
export const sha256Hex = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex')

export function scrypt(password: string | Buffer, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const maxmem = 256 * params.N * params.r + 32 * 1024 * 1024
    scryptCb(password, salt, 32, { ...params, maxmem }, (err, key) => (err ? reject(err) : resolve(key)))
  })
}

/** What a server keeps for one user (base64 fields in the users file). */
export interface Verifier {
  salt: Buffer
  params: ScryptParams
  storedKey: Buffer
  serverKey: Buffer
}

export interface ClientKeys {
  clientKey: Buffer
  storedKey: Buffer
  serverKey: Buffer
}

/** The keys both sides derive from the password and the user's salt on that server. */
export async function deriveKeys(password: string, salt: Buffer, params: ScryptParams): Promise<ClientKeys> {
  const salted = await scrypt(password, salt, params)
  const clientKey = hmac(salted, 'Client Key')
  return { clientKey, storedKey: sha256(clientKey), serverKey: hmac(salted, 'Server Key') }
}

export async function makeVerifier(password: string, params: ScryptParams = AUTH_SCRYPT): Promise<Verifier> {
  const salt = randomBytes(32)
  const { storedKey, serverKey } = await deriveKeys(password, salt, params)
  return { salt, params, storedKey, serverKey }
}

export function authMessage(user: string, clientNonce: string, serverNonce: string): string {
  return `edfs-auth-v1\n${user}\n${clientNonce}\n${serverNonce}`
}

const xor = (a: Buffer, b: Buffer): Buffer => {
  const out = Buffer.alloc(a.length)
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!
  return out
}

/** Client: the proof sent at login. */
export function clientProof(keys: ClientKeys, message: string): Buffer {
  return xor(keys.clientKey, hmac(keys.storedKey, message))
}

/** Server: checks a proof; returns the client key it reveals, or null. */
export function checkProof(verifier: Verifier, message: string, proof: Buffer): Buffer | null {
  if (proof.length !== 32) return null
  const clientKey = xor(proof, hmac(verifier.storedKey, message))
  return timingSafeEqual(sha256(clientKey), verifier.storedKey) ? clientKey : null
}

/** Both sides: the key that signs the session's requests (unknown to anyone who only saw the exchange). */
export function sessionKey(clientKey: Buffer, message: string): Buffer {
  return hmac(clientKey, `edfs-session\n${message}`)
}

/** Server: proves to the client that it holds the verifier (mutual authentication). */
export function serverSignature(serverKey: Buffer, message: string): Buffer {
  return hmac(serverKey, message)
}

export interface SignedFields {
  session: string
  ts: number
  nonce: string
  sig: string
}

export function canonicalRequest(method: string, pathAndQuery: string, ts: number, nonce: string, contentSha256: string): string {
  return `${method.toUpperCase()}\n${pathAndQuery}\n${ts}\n${nonce}\n${contentSha256}`
}

/** Client: the Authorization header value for one request. */
export function signRequest(session: string, key: Buffer, method: string, pathAndQuery: string, contentSha256 = ''): string {
  const ts = Date.now()
  const nonce = randomBytes(16).toString('hex')
  const sig = hmac(key, canonicalRequest(method, pathAndQuery, ts, nonce, contentSha256)).toString('hex')
  return `${AUTH_SCHEME} session=${session},ts=${ts},nonce=${nonce},sig=${sig}`
}

/** Server: parses an Authorization header; null when it is not well formed. */
export function parseAuthorization(header: string | undefined): SignedFields | null {
  if (!header || !header.startsWith(`${AUTH_SCHEME} `)) return null
  const fields = new Map<string, string>()
  for (const part of header.slice(AUTH_SCHEME.length + 1).split(',')) {
    const eq = part.indexOf('=')
    if (eq > 0) fields.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim())
  }
  const session = fields.get('session')
  const ts = Number(fields.get('ts'))
  const nonce = fields.get('nonce')
  const sig = fields.get('sig')
  if (!session || !/^[0-9a-f]{32}$/.test(session) || !Number.isSafeInteger(ts)) return null
  if (!nonce || !/^[0-9a-f]{32}$/.test(nonce) || !sig || !/^[0-9a-f]{64}$/.test(sig)) return null
  return { session, ts, nonce, sig }
}

/** Server: checks a parsed signature against the session key (constant time). */
export function checkSignature(fields: SignedFields, key: Buffer, method: string, pathAndQuery: string, contentSha256: string): boolean {
  const expected = hmac(key, canonicalRequest(method, pathAndQuery, fields.ts, fields.nonce, contentSha256))
  return timingSafeEqual(expected, Buffer.from(fields.sig, 'hex'))
}
