// The login keys a password gives with one server's salt, derived once per process: a re-login
// (session expired, server restarted) costs no scrypt, nor do servers sharing one verifier
// (quickstart's four, all in one trust domain; see protocol.md for why others must not). The
// process holds the password itself anyway; what is kept here is no more than that.
import { createHash } from 'node:crypto'
import { ClientKeys, ScryptParams, deriveKeys } from '../protocol'

/** Distinct (password, salt, parameters) kept: a few users' servers, or a password change. */
const MAX_REMEMBERED = 16
const remembered = new Map<string, Promise<ClientKeys>>()

export function loginKeys(password: string, salt: Buffer, params: ScryptParams): Promise<ClientKeys> {
  const id = createHash('sha256').update(`${params.N}:${params.r}:${params.p}\0`).update(salt).update('\0').update(password).digest('base64')
  const known = remembered.get(id)
  if (known) return known
  const keys = deriveKeys(password, salt, params)
  keys.catch(() => {
    if (remembered.get(id) === keys) remembered.delete(id)
  })
  if (remembered.size >= MAX_REMEMBERED) remembered.delete(remembered.keys().next().value!)
  remembered.set(id, keys)
  return keys
}
