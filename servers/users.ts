// The users file (DATA/users.json, mode 0600): per user only the salt, the scrypt parameters,
// StoredKey and ServerKey (src/protocol/auth.ts). Changed by the CLI under a lock file, read by a
// running server whenever the file changed (inode, size or mtime), so user changes apply at once.
import { mkdirSync, readFileSync } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import path from 'node:path'
import { Verifier } from '../src/protocol'
import { writeFileAtomicSync } from './fsutil'
import { ProcessLock } from './process-lock'
import { setTimeout as sleep } from 'node:timers/promises'

export interface UserEntry {
  salt: string
  N: number
  r: number
  p: number
  storedKey: string
  serverKey: string
  /**
   * A second password being introduced by `edfs passwd` (same salt and parameters): logins with
   * either work until the change completes. Since users file version 2.
   */
  next?: { storedKey: string; serverKey: string }
}

/** Version 2 added `next`; version 1 files still load. */
const USERS_VERSION = 2

interface UsersFile {
  format: 'edfs-users'
  version: number
  users: Record<string, UserEntry>
}

export function toVerifier(e: UserEntry): Verifier {
  return { salt: Buffer.from(e.salt, 'base64'), params: { N: e.N, r: e.r, p: e.p },
    storedKey: Buffer.from(e.storedKey, 'base64'), serverKey: Buffer.from(e.serverKey, 'base64') }
}

/** The verifiers a login may match: the password, and the one `edfs passwd` is introducing. */
export function verifiersOf(e: UserEntry): Verifier[] {
  const main = toVerifier(e)
  return e.next ? [main, { ...main, storedKey: Buffer.from(e.next.storedKey, 'base64'), serverKey: Buffer.from(e.next.serverKey, 'base64') }] : [main]
}

export function fromVerifier(v: Verifier): UserEntry {
  return { salt: v.salt.toString('base64'), N: v.params.N, r: v.params.r, p: v.params.p,
    storedKey: v.storedKey.toString('base64'), serverKey: v.serverKey.toString('base64') }
}

export function parseUsers(text: string, file: string): Record<string, UserEntry> {
  const parsed = JSON.parse(text) as UsersFile
  if (parsed?.format !== 'edfs-users' || typeof parsed.users !== 'object') throw new Error(`${file} is not an edfs users file`)
  if (parsed.version !== 1 && parsed.version !== USERS_VERSION) throw new Error(`${file} has users file version ${parsed.version}; this edfs reads 1 and ${USERS_VERSION}`)
  return parsed.users
}

export function readUsersSync(file: string): Record<string, UserEntry> {
  try {
    return parseUsers(readFileSync(file, 'utf8'), file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw err
  }
}

/** Read-modify-write of the users file under DATA/users.json.lock (CLI only: synchronous). */
export async function updateUsers(file: string, change: (users: Record<string, UserEntry>) => void): Promise<void> {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
  const lockFile = `${file}.lock`
  const deadline = Date.now() + 10_000
  let lock: ProcessLock
  for (;;) {
    const got = ProcessLock.tryAcquire(lockFile)
    if (got instanceof ProcessLock) {
      lock = got
      break
    }
    if (Date.now() > deadline) throw new Error(`${lockFile} is held by another edfs command (pid ${got.heldBy}): wait for it to finish`)
    await sleep(50)
  }
  try {
    const users = readUsersSync(file)
    change(users)
    const body: UsersFile = { format: 'edfs-users', version: USERS_VERSION, users }
    writeFileAtomicSync(file, `${JSON.stringify(body, null, 2)}\n`, 0o600)
  } finally {
    lock.release()
  }
}

/** Adds a user to the users file; false (and nothing written) if the name is taken. */
export async function addUser(file: string, name: string, verifier: Verifier): Promise<boolean> {
  let added = false
  await updateUsers(file, (users) => {
    if (users[name]) return
    users[name] = fromVerifier(verifier)
    added = true
  })
  return added
}

/** The server's view of the users file, re-read when it changes. */
export class UserTable {
  private users: Record<string, UserEntry> = {}
  private signature = ''
  private checkedAt = 0
  private loading: Promise<void> | null = null

  constructor(private readonly file: string) {}

  /** The user's verifiers (the password, and one being introduced), or null. `maxAgeMs` bounds how stale the cached file may be. */
  async get(name: string, maxAgeMs = 0): Promise<Verifier[] | null> {
    if (Date.now() - this.checkedAt > maxAgeMs) await this.refresh()
    const e = Object.prototype.hasOwnProperty.call(this.users, name) ? this.users[name] : undefined
    return e ? verifiersOf(e) : null
  }

  /**
   * The user's own password change (POST /v1/auth/password). `replace`: the new keys become the
   * only ones. Otherwise they become `next`, beside the keys the caller logged in with (`current`,
   * a StoredKey; promoted if it was `next`), so the caller's password keeps working. Same salt
   * and parameters. (Synchronous file work under the users lock: rare, and small.)
   */
  async changeKeys(name: string, keys: { storedKey: string; serverKey: string }, replace: boolean, current: string): Promise<void> {
    await updateUsers(this.file, (users) => {
      const e = users[name]
      if (!e) throw new Error(`no user ${name}`)
      const { next, ...main } = e
      if (replace) users[name] = { ...main, ...keys }
      else if (next && next.storedKey === current) users[name] = { ...main, ...next, next: keys }
      else users[name] = { ...main, next: keys }
    })
    this.checkedAt = 0
  }

  private refresh(): Promise<void> {
    if (!this.loading) {
      this.loading = this.load().finally(() => (this.loading = null))
    }
    return this.loading
  }

  private async load(): Promise<void> {
    const started = Date.now()
    try {
      const st = await stat(this.file, { bigint: true })
      const sig = `${st.ino}:${st.size}:${st.mtimeNs}`
      if (sig !== this.signature) {
        this.users = parseUsers(await readFile(this.file, 'utf8'), this.file)
        this.signature = sig
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        this.users = {}
        this.signature = ''
      } else {
        // Keep serving with the last good copy; say so once per change.
        process.stderr.write(`edfs server: cannot read users file: ${(err as Error).message}\n`)
      }
    }
    this.checkedAt = started
  }
}
