// `edfs mount MOUNTPOINT` and `edfs umount MOUNTPOINT`.
//
// mount runs the daemon in the background by default: it starts itself again, detached, with
// --foreground, hands it the password on a pipe (never in argv), and returns once the mount
// answers (or prints the tail of the daemon's log and fails). The daemon writes a pid file next to
// its log (~/.local/state/edfs/mount-<name>.{log,pid}); on SIGTERM/SIGINT it unmounts, then closes
// the volume (flush, commit, release the lease), then exits. umount signals it and waits.
//
// Nothing here blocks the event loop: the daemon serves FUSE requests on it.
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { open, mkdir, readFile, readdir, stat, unlink, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import * as path from 'node:path'
import { Command } from 'commander'
import { createFuseOps } from '../../fuse/adapter'
import { findFuseMount, forceUnmount, mount, prepareMountPoint, probeMountPoint, type Mounted } from '../../fuse/binding'
import { ClusterConnectError } from '../../cluster'
import { parseListenAddress, serveMetrics } from '../../protocol'
import { daemonRegistry } from '../daemon-metrics'
import { MOUNT_OPTIONS_HELP } from '../mount-helper'
import { DEFAULT_CACHE_BYTES, LeaseHeldError } from '../../volume'
import type { FileSystem } from '../../volume/fs-types'
import { UsageError } from '../errors'
import { readPassword } from '../password'
import { NODE_FLAGS } from '../self'
import { stateDir } from '../state-dir'
import { formatSize, parseSize } from '../../protocol'
import { openVolume } from '../volume-open'

interface MountOptions {
  readOnly?: boolean
  cacheSize: string
  cacheDir?: string
  diskCacheSize: string
  foreground?: boolean
  allowOther?: boolean
  config?: string
  passwordStdin?: boolean
  timeout: string
  syncClose?: boolean
  commitInterval: string
  gcInterval: string
  gcGrace: string
  repairPass: string
  repairRate: string
  metrics?: string
}

interface UmountOptions {
  timeout: string
}

export function registerMount(program: Command): void {
  program
    .command('mount')
    .argument('<mountpoint>', 'an existing empty directory')
    .description('mount the volume at a directory (runs in the background until `edfs umount`)')
    .option('--read-only', 'mount read-only (no lease: may run while another machine writes)')
    .option('--cache-size <size>', 'memory for decrypted chunks and write buffers', formatSize(DEFAULT_CACHE_BYTES).replace(' ', ''))
    .option('--cache-dir <dir>', 'keep sealed chunks on this machine\'s disk here (default: ~/.cache/edfs/VOLUME, or $XDG_CACHE_HOME/edfs/VOLUME)')
    .option('--disk-cache-size <size>', 'most bytes the disk cache holds; auto: 10GiB, or half the free space if less; 0: no disk cache', 'auto')
    .option('--foreground', 'stay in the foreground (logs on stderr)')
    .option('--allow-other', 'let other users use the mount (needs user_allow_other in /etc/fuse.conf unless root)')
    .option('--config <file>', 'config file (default: $EDFS_CONFIG or ~/.config/edfs/config.json)')
    .option('--password-stdin', 'read the password from standard input')
    .option('--timeout <seconds>', 'how long to wait for the mount to answer', '120')
    .option('--commit-interval <seconds>', 'changes are committed to the servers at most this long after they happen', '1')
    .option('--sync-close', 'close(2) returns only once the file is committed (slower; by default close returns at once)')
    .option('--gc-interval <seconds>', 'collect garbage (chunks nothing refers to) in the background this often; 0: never', '60')
    .option('--gc-grace <seconds>', 'a chunk is deleted only once it is this old and has been unreferenced this long', '300')
    .option('--repair-pass <hours>', 'check every chunk\'s copies in the background this often and repair what is short or off home; 0: never (chunks written degraded are still copied home)', '24')
    .option('--repair-rate <size>', 'most bytes per second background repair copies', '32MiB')
    .option('--metrics <[host:]port>', 'serve Prometheus metrics at http://HOST:PORT/metrics (a bare port: 127.0.0.1)')
    .addHelpText('after', `
The password comes from --password-stdin, else $EDFS_PASSWORD, else a prompt. The daemon's log and
pid file are under ~/.local/state/edfs/ (or $XDG_STATE_HOME/edfs/).

Repair: chunks written while a home server was down or full are remembered (a file under the
state directory, so a restart keeps them) and copied home once it answers again; a full pass
(--repair-pass, paused while the mount is busy) restores copies servers lost or quarantined.
\`edfs status\` shows the queue and the last full pass.

Durability: close returns once the file is in the daemon's write-back pipeline, and changes are
committed within --commit-interval. fsync, \`edfs sync\` and umount return once everything written
before them is on the servers. If the daemon is killed, at most the changes of the last interval
that no fsync or sync covered are lost, and the volume shows a state as of some earlier moment.

As a file system type (mount.fuse runs \`edfs CONFIG MOUNTPOINT -o OPTIONS\`):
  mount -t fuse.edfs /etc/edfs/config.json /mnt/dfs -o password_file=/etc/edfs/password,allow_other
  fstab: /etc/edfs/config.json /mnt/dfs fuse.edfs password_file=/etc/edfs/password,_netdev,nofail 0 0
${MOUNT_OPTIONS_HELP}
umount /mnt/dfs (or fusermount -u) flushes and commits like edfs umount.

Examples:
  edfs mount /mnt/dfs
  echo "$PW" | edfs mount /mnt/dfs --read-only --password-stdin`)
    .action((mountPoint: string, opts: MountOptions) => (opts.foreground ? runDaemon(mountPoint, opts) : startBackground(mountPoint, opts)))

  program
    .command('umount')
    .alias('unmount')
    .argument('<mountpoint>')
    .description('unmount: the daemon flushes and commits everything, then exits')
    .option('--timeout <seconds>', 'how long to wait for the daemon to finish', '300')
    .action((mountPoint: string, opts: UmountOptions) => umount(mountPoint, opts))
}

// ---- where the daemon keeps its log and pid file ----

/** mount-<readable name>-<short hash>: /mnt/dfs -> mount-mnt-dfs-1a2b3c. */
export function daemonFiles(mountPoint: string): { log: string; pid: string } {
  const slug = mountPoint.replace(/^\/+/, '').replace(/[^A-Za-z0-9._-]+/g, '-').slice(-60) || 'root'
  const hash = createHash('sha256').update(mountPoint).digest('hex').slice(0, 6)
  const base = path.join(stateDir(), `mount-${slug}-${hash}`)
  return { log: `${base}.log`, pid: `${base}.pid` }
}

function seconds(text: string, what: string): number {
  const n = Number(text)
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${what}: not a number of seconds: "${text}"`)
  return n * 1000
}

/** --metrics as host and port (undefined: no metrics). */
function metricsAddress(opts: MountOptions): { host: string; port: number } | undefined {
  if (opts.metrics === undefined) return undefined
  try {
    return parseListenAddress(opts.metrics)
  } catch (err) {
    throw new UsageError(`--metrics: ${(err as Error).message}`)
  }
}

/** The daemon's background repair from --repair-pass and --repair-rate. */
function repairSettings(opts: MountOptions): { passIntervalMs: number; bytesPerSecond: number } {
  const hours = Number(opts.repairPass)
  if (!Number.isFinite(hours) || hours < 0) throw new UsageError(`--repair-pass: not a number of hours: "${opts.repairPass}"`)
  let bytesPerSecond: number
  try {
    bytesPerSecond = parseSize(opts.repairRate)
  } catch (err) {
    throw new UsageError(`--repair-rate: ${(err as Error).message}`)
  }
  if (bytesPerSecond < 1) throw new UsageError('--repair-rate: at least 1 byte per second')
  return { passIntervalMs: hours * 3600_000, bytesPerSecond }
}

/** The daemon's background gc from --gc-interval and --gc-grace (undefined: off). */
function backgroundGcOptions(opts: MountOptions): { intervalMs: number; graceMs: number; holdMs: number } | undefined {
  const interval = Number(opts.gcInterval)
  if (!Number.isFinite(interval) || interval < 0) throw new UsageError(`--gc-interval: not a number of seconds: "${opts.gcInterval}"`)
  if (interval === 0) return undefined
  const graceMs = seconds(opts.gcGrace, '--gc-grace')
  return { intervalMs: interval * 1000, graceMs, holdMs: graceMs }
}

function alive(pid: number): boolean {
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
async function findDaemon(mountPoint: string): Promise<number | null> {
  try {
    const pid = Number((await readFile(daemonFiles(mountPoint).pid, 'utf8')).trim())
    if (pid > 0 && alive(pid) && (await isDaemonFor(pid, mountPoint))) return pid
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
async function tail(file: string, from = 0, lines = 30): Promise<string> {
  try {
    const text = (await readFile(file)).subarray(from).toString('utf8')
    return text.trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}

async function checkMountPoint(mountPoint: string): Promise<void> {
  let st
  try {
    st = await stat(mountPoint)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOTCONN') return // a stale mount: cleared before mounting
    throw new UsageError(`${mountPoint}: ${code === 'ENOENT' ? 'no such directory' : (err as Error).message}`)
  }
  if (!st.isDirectory()) throw new UsageError(`${mountPoint} is not a directory`)
}

// ---- edfs mount (background) ----

async function startBackground(target: string, opts: MountOptions): Promise<void> {
  const mountPoint = path.resolve(target)
  const waitMs = seconds(opts.timeout, '--timeout')
  backgroundGcOptions(opts) // fail here, not in the daemon's log
  repairSettings(opts)
  metricsAddress(opts)
  seconds(opts.commitInterval, '--commit-interval')
  parseSize(opts.cacheSize)
  diskCacheWanted(opts)
  await checkMountPoint(mountPoint)
  const running = await findDaemon(mountPoint)
  if (running) throw new UsageError(`${mountPoint} is already served by edfs (pid ${running}): run \`edfs umount ${mountPoint}\` first`)
  // Here too, not only in the daemon: its refusal would reach only its log.
  await prepareMountPoint(mountPoint, (line) => process.stderr.write(`edfs: ${line}\n`)).catch((err: Error) => {
    throw new UsageError(err.message)
  })
  const password = await readPassword(opts)

  const files = daemonFiles(mountPoint)
  await mkdir(path.dirname(files.log), { recursive: true, mode: 0o700 })
  const logFile = await open(files.log, 'a', 0o600)
  const logStart = (await logFile.stat()).size
  const args = [
    ...NODE_FLAGS, process.argv[1]!, 'mount', mountPoint, '--foreground', '--password-stdin', '--cache-size', opts.cacheSize,
    '--commit-interval', opts.commitInterval, '--gc-interval', opts.gcInterval, '--gc-grace', opts.gcGrace,
    '--repair-pass', opts.repairPass, '--repair-rate', opts.repairRate, '--disk-cache-size', opts.diskCacheSize,
  ]
  if (opts.cacheDir) args.push('--cache-dir', path.resolve(opts.cacheDir))
  if (opts.metrics) args.push('--metrics', opts.metrics)
  if (opts.syncClose) args.push('--sync-close')
  if (opts.readOnly) args.push('--read-only')
  if (opts.allowOther) args.push('--allow-other')
  if (opts.config) args.push('--config', path.resolve(opts.config))
  const env = { ...process.env }
  delete env.EDFS_PASSWORD // it travels on the pipe only
  const child = spawn(process.execPath, args, { detached: true, stdio: ['pipe', logFile.fd, logFile.fd], env })
  await logFile.close()
  let exited: number | string | null = null
  child.on('exit', (code, signal) => (exited = code ?? signal ?? 'unknown'))
  child.on('error', (err) => (exited = err.message))
  child.stdin!.on('error', () => {}) // the daemon may die before reading it
  child.stdin!.end(`${password}\n`)
  child.unref()

  const deadline = Date.now() + waitMs
  for (;;) {
    if (exited !== null) {
      process.stderr.write(`${await tail(files.log, logStart)}\n`)
      throw new UsageError(`the mount daemon exited (${exited}) before the mount was ready; log: ${files.log}`)
    }
    if ((await findFuseMount(mountPoint)) && (await probeMountPoint(mountPoint)) === 'ok') break
    if (Date.now() > deadline) {
      child.kill('SIGTERM')
      process.stderr.write(`${await tail(files.log, logStart)}\n`)
      throw new UsageError(`the mount did not answer within ${opts.timeout} s; stopped the daemon; log: ${files.log}`)
    }
    await sleep(100)
  }
  process.stdout.write(`edfs: mounted ${mountPoint}${opts.readOnly ? ' (read-only)' : ''} (daemon pid ${child.pid}, log ${files.log})\n`)
}

// ---- the daemon (--foreground) ----

type ClosableFs = FileSystem & { close(): Promise<void> }

export interface DaemonDeps {
  /** Opens the file system to serve (default: the volume named by the config). */
  openFs?: (password: string) => Promise<ClosableFs>
}

export async function runDaemon(target: string, opts: MountOptions, deps: DaemonDeps = {}): Promise<void> {
  const mountPoint = path.resolve(target)
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`)
  const cacheBytes = parseSize(opts.cacheSize)
  const commitDelayMs = seconds(opts.commitInterval, '--commit-interval')
  const disk = diskCacheWanted(opts)
  await checkMountPoint(mountPoint)
  const password = await readPassword(opts)
  const files = daemonFiles(mountPoint)
  await mkdir(path.dirname(files.pid), { recursive: true, mode: 0o700 })
  await writeFile(files.pid, `${process.pid}\n`, { mode: 0o600 })
  const removePid = async () => {
    try {
      if ((await readFile(files.pid, 'utf8')).trim() === String(process.pid)) await unlink(files.pid)
    } catch {
      /* gone */
    }
  }

  let fs: ClosableFs | undefined
  let mounted: Mounted | undefined
  let stopping: Promise<void> | undefined
  const stop = (why: string): Promise<void> => {
    if (stopping) {
      log(`${why}: already stopping`)
      return stopping
    }
    log(`${why}: unmounting ${mountPoint}`)
    stopping = (async () => {
      let code = 0
      try {
        if (mounted) await mounted.unmount()
      } catch (err) {
        log(`unmount failed: ${(err as Error).message}; detaching`)
        await forceUnmount(mountPoint).catch((e: Error) => log(e.message))
      }
      try {
        if (fs) {
          log('flushing and closing the volume')
          await fs.close()
        }
      } catch (err) {
        code = 1
        log(`closing the volume failed: ${(err as Error).stack ?? err}`)
      }
      await removePid()
      log(code === 0 ? 'stopped' : 'stopped with errors')
      process.exit(code)
    })()
    return stopping
  }
  process.on('SIGTERM', () => void stop('SIGTERM'))
  process.on('SIGINT', () => void stop('SIGINT'))
  process.on('SIGHUP', () => log('SIGHUP ignored (use edfs umount)'))
  // `edfs gc` beside this mount asks for a pass now (the daemon holds the lease, so it collects).
  process.on('SIGUSR2', () => {
    const gc = (fs as { gc?: { pass(): Promise<void> } | null } | undefined)?.gc
    if (!gc) return log('gc requested, but this mount collects no garbage (read-only, or --gc-interval 0)')
    log('gc requested (edfs gc): a pass now')
    void gc.pass()
  })

  try {
    log(`edfs mount daemon pid ${process.pid}: opening the volume${opts.readOnly ? ' read-only' : ''}`)
    const metricsAt = metricsAddress(opts)
    const openFs =
      deps.openFs ??
      (async (pw: string) => {
        const volume = await openVolume({
          config: opts.config,
          readOnly: !!opts.readOnly,
          cacheBytes,
          disk,
          password: pw,
          commitDelayMs,
          syncClose: !!opts.syncClose,
          backgroundGc: opts.readOnly ? undefined : backgroundGcOptions(opts),
          repair: opts.readOnly ? undefined : repairSettings(opts),
          followMembershipMs: 5000,
          holder: `${hostname()} pid ${process.pid} ${mountPoint}`,
          log,
        })
        if (!metricsAt) return volume
        const endpoint = await serveMetrics(daemonRegistry(volume), metricsAt.host, metricsAt.port).catch(async (err: Error) => {
          await volume.close()
          throw new UsageError(`--metrics ${opts.metrics}: cannot listen: ${err.message}`)
        })
        log(`metrics on ${endpoint.url}`)
        const close = volume.close.bind(volume)
        return Object.assign(volume, { close: async () => { await endpoint.close(); await close() } })
      })
    fs = await openFs(password)
    if (stopping) return
    mounted = await mount(mountPoint, createFuseOps(fs, { log }), { allowOther: !!opts.allowOther, writer: opts.readOnly ? 'others' : 'self', log })
    log(`mounted ${mountPoint}`)
    await raiseReadAhead(mountPoint, log)
    if (stopping) await stop('stopping')
    watchUnmount(mountPoint, () => void stop('unmounted from outside (fusermount -u or umount)'))
  } catch (err) {
    // The reasons a user can act on (wrong password, lease held, no server) read as one line; a
    // stack trace is for the unexpected, and stays in the log.
    const expected = err instanceof UsageError || err instanceof LeaseHeldError || err instanceof ClusterConnectError
    log(`mount failed: ${expected ? (err as Error).message : ((err as Error).stack ?? err)}`)
    if (fs) await fs.close().catch((e: Error) => log(`closing the volume failed: ${e.message}`))
    await removePid()
    throw err instanceof UsageError ? err : new UsageError(`mount failed: ${(err as Error).message}`)
  }
}

/** What --cache-dir and --disk-cache-size ask for: undefined for no disk cache. */
function diskCacheWanted(opts: MountOptions): { dir?: string; maxBytes?: number } | undefined {
  const size = opts.diskCacheSize
  let maxBytes: number | undefined
  try {
    maxBytes = size === 'auto' ? undefined : parseSize(size)
  } catch (err) {
    throw new UsageError(`--disk-cache-size: ${(err as Error).message}, or auto`)
  }
  if (maxBytes === 0) return undefined
  return { dir: opts.cacheDir ? path.resolve(opts.cacheDir) : undefined, maxBytes }
}

/**
 * The kernel reads ahead only 128 KiB on a FUSE mount by default; 1 MiB lets it keep several reads in
 * flight, which the chunk cache's read-ahead turns into parallel fetches. Best effort (needs root).
 */
async function raiseReadAhead(mountPoint: string, log: (line: string) => void): Promise<void> {
  try {
    const dev = (await stat(mountPoint)).dev
    const bdi = `/sys/class/bdi/${Math.floor(dev / 256) & 0xfff}:${(dev & 0xff) | ((dev >> 12) & 0xfff00)}/read_ahead_kb`
    await writeFile(bdi, '1024')
  } catch (err) {
    log(`note: could not raise read-ahead (${(err as Error).message})`)
  }
}

/** Someone unmounted us without `edfs umount`: stop too, so data is flushed and the lease given back. */
function watchUnmount(mountPoint: string, onGone: () => void): void {
  const timer = setInterval(() => {
    findFuseMount(mountPoint).then(
      (entry) => {
        if (!entry) {
          clearInterval(timer)
          onGone()
        }
      },
      () => undefined,
    )
  }, 2000)
  timer.unref()
}

// ---- edfs umount ----

async function umount(target: string, opts: UmountOptions): Promise<void> {
  const mountPoint = path.resolve(target)
  const waitMs = seconds(opts.timeout, '--timeout')
  const pid = await findDaemon(mountPoint)
  if (pid) {
    const logFile = daemonFiles(mountPoint).log
    const logStart = await stat(logFile).then((s) => s.size, () => 0)
    process.kill(pid, 'SIGTERM')
    const deadline = Date.now() + waitMs
    while (alive(pid)) {
      if (Date.now() > deadline) {
        throw new UsageError(
          `the daemon (pid ${pid}) has not finished within ${opts.timeout} s (still uploading?); it keeps going: see ${daemonFiles(mountPoint).log}`,
        )
      }
      await sleep(100)
    }
    if (await findFuseMount(mountPoint)) await forceUnmount(mountPoint) // it died before unmounting
    // The daemon is not our child: its log says whether the last flush and commit succeeded.
    const stopLog = await readFile(logFile, 'utf8').then((s) => s.slice(logStart), () => '')
    if (/stopped with errors/.test(stopLog)) {
      const why = stopLog.split('\n').filter((l) => /failed|error/i.test(l) && !/stopped with errors/.test(l)).slice(-3).join('\n')
      throw new UsageError(`unmounted ${mountPoint}, but the last changes could not all be stored:\n${why}\n(see ${logFile})`)
    }
    process.stdout.write(`edfs: unmounted ${mountPoint}\n`)
    return
  }
  const entry = await findFuseMount(mountPoint)
  if (!entry) throw new UsageError(`${mountPoint} is not mounted`)
  if (entry.type !== 'fuse.edfs') throw new UsageError(`${mountPoint} is a ${entry.type} mount, not edfs: not touching it`)
  await forceUnmount(mountPoint)
  process.stdout.write(`edfs: ${mountPoint}: no daemon was serving it; cleared the ${entry.type} mount\n`)
}
