// The key file: a volume's random 256-bit master key, wrapped (AES-256-GCM) under a key derived
// from the passphrase with scrypt. JSON, versioned; docs/crypto.md documents the format.
//
// The wrap's additional data binds format, version, volumeId and every KDF parameter, so none can be
// altered (e.g. to weaken the KDF or to graft the key onto another volume id) without the unwrap failing.
import { randomBytes, scrypt as scryptCb } from 'node:crypto'
import { KeyFileError, WrongPassphraseError } from './errors'
import { KEY_BYTES, NONCE_BYTES, NonceSource, TAG_BYTES, openInto, randomNonces, sealInto } from './aead'

export const KEYFILE_FORMAT = 'edfs-keyfile'
export const KEYFILE_VERSION = 1
export const SALT_BYTES = 32
const WRAPPED_BYTES = NONCE_BYTES + KEY_BYTES + TAG_BYTES

export interface ScryptParams {
  N: number
  r: number
  p: number
}

export interface KeyFile {
  format: 'edfs-keyfile'
  version: 1
  /** 32 lowercase hex digits, random, fixed for the life of the volume. */
  volumeId: string
  kdf: { name: 'scrypt'; N: number; r: number; p: number; salt: string /* base64, 32 bytes */ }
  /** base64 of nonce (12) | AES-256-GCM(master key) (32) | tag (16). */
  wrappedKey: string
  /** ISO 8601 time the volume's key was made (kept across passphrase changes; informational, not bound). */
  createdAt: string
}

/** What new key files use: 2^16 x 8 x 128 B = 64 MiB and ~0.2 s per unlock. */
export const DEFAULT_SCRYPT: Readonly<ScryptParams> = { N: 2 ** 16, r: 8, p: 1 }
/** Weaker than this is refused. */
export const MIN_SCRYPT: Readonly<ScryptParams> = { N: 2 ** 16, r: 8, p: 1 }
/** Stronger than this is refused too: a key file can come from a server, and must not make us allocate gigabytes. */
export const MAX_SCRYPT: Readonly<ScryptParams & { memoryBytes: number }> = { N: 2 ** 22, r: 32, p: 16, memoryBytes: 1024 * 1024 * 1024 }

const HEX32 = /^[0-9a-f]{32}$/
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

function fail(message: string): never {
  throw new KeyFileError(`key file: ${message}`)
}

function decodeBase64(s: unknown, bytes: number, field: string): Buffer {
  if (typeof s !== 'string' || !BASE64.test(s)) fail(`${field} is not base64`)
  const buf = Buffer.from(s, 'base64')
  if (buf.toString('base64') !== s) fail(`${field} is not canonical base64`)
  if (buf.length !== bytes) fail(`${field} must be ${bytes} bytes, is ${buf.length}`)
  return buf
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Checks KDF parameters: KeyFileError when too weak, absurdly strong, or not well formed. */
export function checkScryptParams(kdf: ScryptParams): void {
  const { N, r, p } = kdf
  for (const [k, v] of [['N', N], ['r', r], ['p', p]] as const) {
    if (!Number.isSafeInteger(v) || v < 1) fail(`kdf.${k} must be a positive integer, is ${String(v)}`)
  }
  if ((N & (N - 1)) !== 0) fail(`kdf.N must be a power of two, is ${N}`)
  if (N < MIN_SCRYPT.N || r < MIN_SCRYPT.r || p < MIN_SCRYPT.p) {
    fail(`scrypt parameters N=${N} r=${r} p=${p} are too weak (at least N=${MIN_SCRYPT.N} r=${MIN_SCRYPT.r} p=${MIN_SCRYPT.p})`)
  }
  if (N > MAX_SCRYPT.N || r > MAX_SCRYPT.r || p > MAX_SCRYPT.p || 128 * N * r > MAX_SCRYPT.memoryBytes) {
    fail(`scrypt parameters N=${N} r=${r} p=${p} exceed what edfs accepts (N<=${MAX_SCRYPT.N}, r<=${MAX_SCRYPT.r}, p<=${MAX_SCRYPT.p}, 128*N*r <= 1 GiB)`)
  }
}

/** Checks a parsed value field by field and returns a clean KeyFile (unknown extra fields dropped). */
export function validateKeyFile(value: unknown): KeyFile {
  if (!isObject(value)) fail('not a JSON object')
  if (value.format !== KEYFILE_FORMAT) fail(`format is ${JSON.stringify(value.format)}, not "${KEYFILE_FORMAT}"`)
  if (value.version !== KEYFILE_VERSION) {
    fail(`version ${JSON.stringify(value.version)} is not supported (this edfs reads version ${KEYFILE_VERSION})`)
  }
  if (typeof value.volumeId !== 'string' || !HEX32.test(value.volumeId)) fail('volumeId must be 32 lowercase hex digits')
  const kdf = value.kdf
  if (!isObject(kdf)) fail('kdf is missing')
  if (kdf.name !== 'scrypt') fail(`kdf.name ${JSON.stringify(kdf.name)} is not supported (only "scrypt")`)
  const params = { N: kdf.N as number, r: kdf.r as number, p: kdf.p as number }
  checkScryptParams(params)
  decodeBase64(kdf.salt, SALT_BYTES, 'kdf.salt')
  decodeBase64(value.wrappedKey, WRAPPED_BYTES, 'wrappedKey')
  if (typeof value.createdAt !== 'string' || Number.isNaN(Date.parse(value.createdAt))) fail('createdAt is not a date')
  return {
    format: KEYFILE_FORMAT,
    version: KEYFILE_VERSION,
    volumeId: value.volumeId,
    kdf: { name: 'scrypt', ...params, salt: kdf.salt as string },
    wrappedKey: value.wrappedKey as string,
    createdAt: value.createdAt,
  }
}

/** Parses key file bytes (UTF-8 JSON); KeyFileError when malformed, of another version, or too weak. */
export function parseKeyFile(bytes: Buffer): KeyFile {
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'))
  } catch (err) {
    fail(`not valid JSON (${(err as Error).message})`)
  }
  return validateKeyFile(value)
}

/** The key file as stored: pretty JSON, fixed field order, trailing newline. */
export function serializeKeyFile(kf: KeyFile): Buffer {
  const k = validateKeyFile(kf)
  return Buffer.from(JSON.stringify(k, null, 2) + '\n', 'utf8')
}

/** The wrap's additional data: everything in the file but the wrapped key itself and createdAt. */
function wrapAad(kf: Pick<KeyFile, 'format' | 'version' | 'volumeId' | 'kdf'>): Buffer {
  const { N, r, p, salt } = kf.kdf
  return Buffer.from(`${kf.format}\n${kf.version}\n${kf.volumeId}\n${kf.kdf.name}\n${N}\n${r}\n${p}\n${salt}`, 'utf8')
}

function normalize(passphrase: string): string {
  if (typeof passphrase !== 'string') throw new TypeError('passphrase must be a string')
  return passphrase.normalize('NFC')
}

/** scrypt on the libuv thread pool (never scryptSync: the mount daemon's event loop must keep running). */
function deriveKek(passphrase: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const maxmem = 2 * 128 * params.N * params.r + 128 * params.r * params.p + 32 * 1024 * 1024
  return new Promise((resolve, reject) => {
    scryptCb(normalize(passphrase), salt, KEY_BYTES, { N: params.N, r: params.r, p: params.p, maxmem }, (err, key) =>
      err ? reject(err) : resolve(key),
    )
  })
}

async function wrap(
  masterKey: Buffer, passphrase: string, head: Pick<KeyFile, 'volumeId' | 'createdAt'>, params: ScryptParams, nonces: NonceSource,
  salt: Buffer = randomBytes(SALT_BYTES),
): Promise<KeyFile> {
  if (normalize(passphrase).length === 0) throw new RangeError('the passphrase must not be empty')
  const kdf = { name: 'scrypt' as const, N: params.N, r: params.r, p: params.p, salt: salt.toString('base64') }
  checkScryptParams(kdf)
  const body = { format: KEYFILE_FORMAT, version: KEYFILE_VERSION, volumeId: head.volumeId, kdf } as const
  const kek = await deriveKek(passphrase, salt, params)
  const wrapped = Buffer.alloc(WRAPPED_BYTES)
  try {
    sealInto(kek, wrapAad(body), masterKey, wrapped, 0, nonces)
  } finally {
    kek.fill(0)
  }
  return { ...body, wrappedKey: wrapped.toString('base64'), createdAt: head.createdAt }
}

/** createKeyFile with injected randomness and parameters (tests: golden vectors). */
export async function createKeyFileWith(
  passphrase: string,
  opts: { masterKey?: Buffer; volumeId?: string; salt?: Buffer; createdAt?: string; params?: ScryptParams; nonces?: NonceSource } = {},
): Promise<{ keyFile: KeyFile; masterKey: Buffer }> {
  const masterKey = opts.masterKey ?? randomBytes(KEY_BYTES)
  if (masterKey.length !== KEY_BYTES) throw new RangeError(`master key must be ${KEY_BYTES} bytes`)
  const volumeId = opts.volumeId ?? randomBytes(16).toString('hex')
  const createdAt = opts.createdAt ?? new Date().toISOString()
  const keyFile = await wrap(masterKey, passphrase, { volumeId, createdAt }, opts.params ?? DEFAULT_SCRYPT, opts.nonces ?? randomNonces, opts.salt)
  return { keyFile, masterKey }
}

/** A new volume: a random master key and a random volume id, wrapped under the passphrase. */
export function createKeyFile(passphrase: string): Promise<{ keyFile: KeyFile; masterKey: Buffer }> {
  return createKeyFileWith(passphrase)
}

/** The master key; WrongPassphraseError when the passphrase (or a bound field) is wrong, KeyFileError when malformed. */
export async function unwrapMasterKey(keyFile: KeyFile, passphrase: string): Promise<Buffer> {
  const kf = validateKeyFile(keyFile)
  const salt = decodeBase64(kf.kdf.salt, SALT_BYTES, 'kdf.salt')
  const wrapped = decodeBase64(kf.wrappedKey, WRAPPED_BYTES, 'wrappedKey')
  const kek = await deriveKek(passphrase, salt, kf.kdf)
  const masterKey = Buffer.alloc(KEY_BYTES)
  try {
    openInto(kek, wrapAad(kf), wrapped, masterKey, 0, 'key file')
  } catch {
    masterKey.fill(0)
    throw new WrongPassphraseError(
      `wrong passphrase: it does not open the key file of volume ${kf.volumeId} (or the key file's fields were altered)`,
    )
  } finally {
    kek.fill(0)
  }
  return masterKey
}

/**
 * Changes the passphrase: the same master key (so no data is re-encrypted), a new salt and nonce,
 * the same volume id and createdAt; KDF parameters are kept, or raised to today's default.
 */
export async function rewrapKeyFile(keyFile: KeyFile, oldPass: string, newPass: string): Promise<KeyFile> {
  const kf = validateKeyFile(keyFile)
  const masterKey = await unwrapMasterKey(kf, oldPass)
  try {
    const params = { N: Math.max(kf.kdf.N, DEFAULT_SCRYPT.N), r: Math.max(kf.kdf.r, DEFAULT_SCRYPT.r), p: Math.max(kf.kdf.p, DEFAULT_SCRYPT.p) }
    return await wrap(masterKey, newPass, kf, params, randomNonces)
  } finally {
    masterKey.fill(0)
  }
}
