// A lock file held by a process for as long as it runs: the server's hold on its data directory,
// a CLI command's on the users file. The file names its holder by boot id, pid and the pid's start
// time, so the lock of a process killed with SIGKILL (or of a restarted container, whose pids
// start over) is seen to be stale and taken over at once; no timeout to wait out, and a slow
// holder is never mistaken for a dead one.
import { randomBytes } from 'node:crypto'
import { linkSync, readFileSync, renameSync, unlinkSync } from 'node:fs'
import { writeFileAtomicSync } from './fsutil'

interface Holder {
  boot: string
  pid: number
  start: string
}

export class ProcessLock {
  private constructor(private readonly file: string, private readonly me: Holder) {}

  /** Takes the lock at `file` for this process, or says which live process holds it. */
  static tryAcquire(file: string): ProcessLock | { heldBy: number } {
    const me: Holder = { boot: bootId(), pid: process.pid, start: processStart(process.pid) ?? '' }
    const unique = () => `${file}.${process.pid}-${randomBytes(6).toString('hex')}` // pids repeat across containers
    const tmp = unique()
    writeFileAtomicSync(tmp, `${JSON.stringify(me)}\n`, 0o600)
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          linkSync(tmp, file) // EEXIST if held: the file appears with its content in one step
          return new ProcessLock(file, me)
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
        }
        const holder = readHolder(file)
        if (holder && isRunning(holder)) return { heldBy: holder.pid }
        removeStale(file, holder, unique())
      }
      throw new Error(`cannot take the lock ${file}: it keeps coming back`)
    } finally {
      removeIfPresent(tmp)
    }
  }

  /** Best effort, never throws: a lock left behind is seen to be stale once this process is gone. */
  release(): void {
    try {
      if (sameHolder(readHolder(this.file), this.me)) removeIfPresent(this.file)
    } catch {
      /* left for the next holder to take over */
    }
  }
}

/**
 * Removes the lock at `file` if it still names the stale `holder`. It is moved aside first and
 * checked there, so of two processes taking over the same stale lock at once, the second does not
 * delete the first one's fresh lock (it puts it back).
 */
function removeStale(file: string, holder: Holder | null, aside: string): void {
  try {
    renameSync(file, aside)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  if (!sameHolder(readHolder(aside), holder)) {
    try {
      linkSync(aside, file)
    } catch {
      /* someone else holds the name now: theirs stands */
    }
  }
  removeIfPresent(aside)
}

function sameHolder(a: Holder | null, b: Holder | null): boolean {
  return a === b || (a !== null && b !== null && a.pid === b.pid && a.start === b.start && a.boot === b.boot)
}

function readHolder(file: string): Holder | null {
  try {
    const h = JSON.parse(readFileSync(file, 'utf8')) as Partial<Holder>
    return typeof h.boot === 'string' && typeof h.pid === 'number' && typeof h.start === 'string' ? (h as Holder) : null
  } catch {
    return null
  }
}

function isRunning(h: Holder): boolean {
  return h.boot === bootId() && processStart(h.pid) === h.start
}

function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  } catch {
    return ''
  }
}

/**
 * Start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat); null if it is gone or
 * a zombie (state Z or X: dead, not yet reaped by its parent).
 */
function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return fields[0] === 'Z' || fields[0] === 'X' ? null : (fields[19] ?? null)
  } catch {
    return null
  }
}

function removeIfPresent(file: string): void {
  try {
    unlinkSync(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
}
