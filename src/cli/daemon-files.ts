// Where a mount daemon keeps its log, pid file and stop status (under the state directory), how a
// command finds the daemon serving a mount point, and what the daemon reports when it stops: umount
// is not its parent, so the daemon writes whether its last flush and commit succeeded to a status
// file that umount reads once the process is gone.
import { createHash } from 'node:crypto'
import { readFile, readdir, unlink } from 'node:fs/promises'
import * as path from 'node:path'
import { z } from 'zod'
import { writePrivateFile } from './config'
import { stateDir } from './state-dir'

export interface DaemonFiles {
  log: string
  pid: string
  /** The daemon's stop status (StopStatus, JSON), written as it exits. */
  status: string
}

/** mount-<readable name>-<short hash>: /mnt/dfs -> mount-mnt-dfs-1a2b3c.{log,pid,status}, in `dir`. */
export function daemonFiles(mountPoint: string, dir = stateDir()): DaemonFiles {
  const slug = mountPoint.replace(/^\/+/, '').replace(/[^A-Za-z0-9._-]+/g, '-').slice(-60) || 'root'
  const hash = createHash('sha256').update(mountPoint).digest('hex').slice(0, 6)
  const base = path.join(dir, `mount-${slug}-${hash}`)
  return { log: `${base}.log`, pid: `${base}.pid`, status: `${base}.status` }
}

/** Whether process `pid` exists (0 and negative numbers, which kill(2) takes as process groups, never do). */
export function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

async function cmdline(pid: number): Promise<string[]> {
  try {
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean)
  } catch {
    return []
  }
}

/** Whether `pid` is an edfs mount daemon for `mountPoint` (its argv says so). */
async function isDaemonFor(pid: number, mountPoint: string): Promise<boolean> {
  const argv = await cmdline(pid)
  const i = argv.indexOf('mount')
  if (i < 0 || !argv.includes('--foreground')) return false
  return argv.slice(i + 1).some((a) => !a.startsWith('-') && path.resolve(a) === mountPoint)
}

/** The daemon serving `mountPoint`: from its pid file, else by looking through /proc. */
export async function findDaemon(mountPoint: string): Promise<number | null> {
  try {
    const pid = Number((await readFile(daemonFiles(mountPoint).pid, 'utf8')).trim())
    if (alive(pid) && (await isDaemonFor(pid, mountPoint))) return pid
  } catch {
    /* no pid file */
  }
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    const pid = Number(name)
    if (!Number.isInteger(pid) || pid === process.pid) continue
    if (await isDaemonFor(pid, mountPoint)) return pid
  }
  return null
}

/** The last lines of the log, from byte `from` on (this run's part). */
export async function tail(file: string, from = 0, lines = 30): Promise<string> {
  try {
    const text = (await readFile(file)).subarray(from).toString('utf8')
    return text.trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}

const StopStatus = z.object({
  pid: z.number().int(),
  /** Whether everything written through the mount was stored and committed. */
  ok: z.boolean(),
  /** What went wrong, one line each (empty when ok). */
  errors: z.array(z.string()),
})
export type StopStatus = z.infer<typeof StopStatus>

/** Written by the daemon as its last act (atomically: a reader never sees half of it). */
export async function writeStopStatus(file: string, status: StopStatus): Promise<void> {
  await writePrivateFile(file, `${JSON.stringify(status)}\n`)
}

/** The stop status daemon `pid` wrote, or null when it wrote none (it was killed or crashed). */
export async function readStopStatus(file: string, pid: number): Promise<StopStatus | null> {
  try {
    const parsed = StopStatus.safeParse(JSON.parse(await readFile(file, 'utf8')))
    return parsed.success && parsed.data.pid === pid ? parsed.data : null
  } catch {
    return null
  }
}

/** A stop status left by an earlier daemon must not speak for the next one. */
export async function clearStopStatus(file: string): Promise<void> {
  await unlink(file).catch(() => undefined)
}
