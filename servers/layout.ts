// Where everything lives under the data directory (docs/protocol.md, "On-disk layout"), and the
// start-up checks: the directory exists and is writable, the server id and secret exist, tmp/ is empty.
import { randomBytes } from 'node:crypto'
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, unlinkSync, writeSync } from 'node:fs'
import path from 'node:path'
import { ProcessLock } from './process-lock'
import { writeFileAtomicSync } from './fsutil'

export class Layout {
  readonly root: string
  constructor(root: string) {
    this.root = path.resolve(root)
  }
  get serverIdFile(): string { return path.join(this.root, 'server-id') }
  get secretFile(): string { return path.join(this.root, 'secret') }
  get usersFile(): string { return path.join(this.root, 'users.json') }
  get lockFile(): string { return path.join(this.root, 'server.lock') }
  get tmpDir(): string { return path.join(this.root, 'tmp') }
  get usersDir(): string { return path.join(this.root, 'users') }
  /** Callers validate `user` with isUserName before calling. */
  userDir(user: string): string { return path.join(this.usersDir, user) }
  blobsDir(user: string): string { return path.join(this.userDir(user), 'blobs') }
  recordsDir(user: string): string { return path.join(this.userDir(user), 'records') }
  quarantineDir(user: string): string { return path.join(this.userDir(user), 'quarantine') }
  /** Where the background scrub remembers how far it got. */
  get scrubStateFile(): string { return path.join(this.root, 'scrub.json') }
  /** A fresh, unique temp file name in tmp/ (same file system as the stores, so rename is atomic). */
  tmpFile(): string { return path.join(this.tmpDir, `${Date.now().toString(36)}-${randomBytes(8).toString('hex')}.tmp`) }
}

export class DataDirError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'DataDirError'
  }
}

export interface Identity {
  id: string
  /** Server secret (32 bytes): keys the fake salts answered for unknown users. */
  secret: Buffer
  /** This server's hold on the data directory; release it when the server stops. */
  lock: ProcessLock
}

/**
 * Takes the data directory (one server each), creates its skeleton, proves it is writable, clears
 * tmp/, loads or creates id and secret.
 */
export function prepareDataDir(layout: Layout): Identity {
  const where = layout.root
  let lock: ProcessLock | undefined
  try {
    mkdirSync(layout.root, { recursive: true, mode: 0o700 })
    const got = ProcessLock.tryAcquire(layout.lockFile)
    if (!(got instanceof ProcessLock)) {
      throw new DataDirError(`data directory ${where} is in use by another edfs server (pid ${got.heldBy}): stop it, or give this one another --data`)
    }
    lock = got
    // Not recursive: node reports a recursive mkdir on a read-only file system as ENOENT.
    mkdirIfMissing(layout.tmpDir)
    mkdirIfMissing(layout.usersDir)
    for (const name of readdirSync(layout.tmpDir)) rmSync(path.join(layout.tmpDir, name), { recursive: true, force: true })
    const probe = path.join(layout.tmpDir, `probe-${process.pid}`)
    const fd = openSync(probe, 'w', 0o600)
    try {
      writeSync(fd, 'edfs')
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    unlinkSync(probe)
  } catch (err) {
    lock?.release()
    if (err instanceof DataDirError) throw err
    throw new DataDirError(`data directory ${where} is not usable: ${describe(err)}`)
  }
  try {
    return { id: loadOrCreate(layout.serverIdFile, () => randomBytes(16).toString('hex'), 0o644).trim(),
      secret: Buffer.from(loadOrCreate(layout.secretFile, () => randomBytes(32).toString('hex'), 0o600).trim(), 'hex'), lock }
  } catch (err) {
    lock.release()
    throw new DataDirError(`data directory ${where}: cannot read or create the server id: ${describe(err)}`)
  }
}

function mkdirIfMissing(dir: string): void {
  try {
    mkdirSync(dir, { mode: 0o700 })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
}

function loadOrCreate(file: string, make: () => string, mode: number): string {
  try {
    const text = readFileSync(file, 'utf8')
    if (/^[0-9a-f]{32,64}\s*$/.test(text)) return text
    throw new Error(`${file} is malformed`)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const value = make()
  writeFileAtomicSync(file, `${value}\n`, mode)
  return value
}

function describe(err: unknown): string {
  const e = err as NodeJS.ErrnoException
  const reasons: Record<string, string> = {
    EACCES: 'permission denied', EPERM: 'operation not permitted', EROFS: 'read-only file system',
    ENOTDIR: 'a parent is not a directory', ENOSPC: 'no space left on device', EEXIST: 'exists and is not a directory',
  }
  return e?.code && reasons[e.code] ? `${reasons[e.code]} (${e.code}${e.path ? ` at ${e.path}` : ''})` : (e?.message ?? String(err))
}
