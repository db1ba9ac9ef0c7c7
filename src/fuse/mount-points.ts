// Mount points as the system sees them: the mount table (/proc/self/mounts, read asynchronously),
// whether a FUSE mount answers or is stale, detaching one (fusermount -uz, else umount -l), and
// readying a directory for a mount (a stale mount cleared, a non-empty directory refused).
import { spawn } from 'node:child_process'
import { opendir, readFile, stat } from 'node:fs/promises'
import * as path from 'node:path'

/** Decodes the octal escapes (\040 for a space...) of a /proc/mounts field. */
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)))
}

export interface MountEntry {
  source: string
  mountPoint: string
  type: string
  options: string
}

/** The mounts of this mount namespace (read asynchronously from /proc/self/mounts). */
export async function listMounts(): Promise<MountEntry[]> {
  const text = await readFile('/proc/self/mounts', 'utf8')
  const out: MountEntry[] = []
  for (const line of text.split('\n')) {
    const f = line.split(' ')
    if (f.length < 4) continue
    out.push({ source: unescapeMountField(f[0]!), mountPoint: unescapeMountField(f[1]!), type: f[2]!, options: f[3]! })
  }
  return out
}

/** The FUSE mount at `mountPoint`, if any (the last one, which is the visible one). */
export async function findFuseMount(mountPoint: string): Promise<MountEntry | undefined> {
  const mnt = path.resolve(mountPoint)
  const all = await listMounts()
  return all.filter((m) => m.mountPoint === mnt && (m.type === 'fuse' || m.type.startsWith('fuse.'))).pop()
}

/**
 * Whether the mount point answers: 'ok', 'stale' (ENOTCONN: the daemon is gone), or another error
 * code. stat alone is not enough (the kernel answers it from its attribute cache for a while after
 * the daemon died); opening the directory always asks the daemon (libfuse answers opendir itself,
 * without a JS round trip).
 */
export async function probeMountPoint(mountPoint: string): Promise<'ok' | 'stale' | string> {
  try {
    await stat(mountPoint)
    const dir = await opendir(mountPoint)
    await dir.close()
    return 'ok'
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'EIO'
    return code === 'ENOTCONN' || code === 'ECONNABORTED' ? 'stale' : code
  }
}

/** Runs a command without a shell; resolves with its exit code and output (never throws). */
function run(cmd: string, args: string[], timeoutMs = 15_000): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    let output = ''
    let child
    try {
      child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs })
    } catch (err) {
      resolve({ code: -1, output: (err as Error).message })
      return
    }
    child.stdout.on('data', (d: Buffer) => (output += d.toString()))
    child.stderr.on('data', (d: Buffer) => (output += d.toString()))
    child.on('error', (err) => resolve({ code: -1, output: output + err.message }))
    child.on('close', (code) => resolve({ code: code ?? -1, output: output.trim() }))
  })
}

/** Detaches the mount at `mountPoint`: fusermount -uz, else umount -l. */
export async function forceUnmount(mountPoint: string): Promise<void> {
  const a = await run('fusermount', ['-uz', mountPoint])
  if (a.code === 0) return
  const b = await run('umount', ['-l', mountPoint])
  if (b.code === 0) return
  throw new Error(`cannot unmount ${mountPoint}: ${a.output || 'fusermount failed'}; ${b.output || 'umount failed'}`)
}

/** Readies `mountPoint` for a mount: clears a stale mount there, then insists it is empty. */
export async function prepareMountPoint(mountPoint: string, log: (line: string) => void = () => {}): Promise<void> {
  await clearStaleMount(mountPoint, log)
  await assertEmptyMountPoint(mountPoint)
}

/**
 * libfuse 2 refuses a non-empty mount point with a message that only reaches the daemon's log, and
 * mounting over files would hide them: refuse it here, saying why.
 */
async function assertEmptyMountPoint(mountPoint: string): Promise<void> {
  let dir
  try {
    dir = await opendir(mountPoint)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EACCES') return // unreadable to us: fusermount decides
    throw err
  }
  try {
    const first = await dir.read()
    if (first) throw new Error(`${mountPoint} is not empty (it holds ${first.name}, ...): mount on an empty directory, the files there would be hidden`)
  } finally {
    await dir.close().catch(() => {}) // already closed when read() reached the end
  }
}

/**
 * Before mounting: a FUSE mount left at `mountPoint` by a crashed daemon (stat gives ENOTCONN) is
 * detached. A live FUSE mount there is refused: someone is serving it.
 */
export async function clearStaleMount(mountPoint: string, log: (line: string) => void = () => {}): Promise<void> {
  const mnt = path.resolve(mountPoint)
  for (let i = 0; i < 8; i++) {
    const entry = await findFuseMount(mnt)
    if (!entry) return
    const state = await probeMountPoint(mnt)
    if (state === 'ok') throw new Error(`${mnt} is already mounted (${entry.source}, ${entry.type}): unmount it first`)
    log(`clearing a stale mount at ${mnt} (${entry.source}, ${entry.type}: ${state})`)
    await forceUnmount(mnt)
  }
  throw new Error(`${mnt}: stale mounts remain after several unmounts`)
}
