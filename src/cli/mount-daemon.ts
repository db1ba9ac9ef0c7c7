// The mount daemon (`edfs mount --foreground`): opens the volume, mounts it, serves FUSE requests on
// this event loop (nothing here may block it), and on SIGTERM/SIGINT or an unmount from outside
// unmounts, closes the volume (flush, commit, release the lease), writes its stop status
// (daemon-files.ts) and exits.
import { mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import * as path from 'node:path'
import { createFuseOps } from '../fuse/adapter'
import { mount, type Mounted } from '../fuse/binding'
import { findFuseMount, forceUnmount } from '../fuse/mount-points'
import { ClusterConnectError } from '../cluster'
import { parseSize } from '../protocol'
import { serveMetrics } from '../protocol/metrics-endpoint'
import { LeaseHeldError, type FileSystem } from '../volume'
import { daemonRegistry } from './daemon-metrics'
import { clearStopStatus, daemonFiles, writeStopStatus } from './daemon-files'
import { UsageError } from './errors'
import { MountOptions, backgroundGcOptions, checkMountPoint, diskCacheWanted, metricsAddress, repairSettings, seconds } from './mount-options'
import { readPassword } from './password'
import { openVolume } from './volume-open'

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
  await clearStopStatus(files.status)
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
      const errors: string[] = []
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
        errors.push(`closing the volume failed: ${(err as Error).message}`)
        log(`closing the volume failed: ${(err as Error).stack ?? err}`)
      }
      await writeStopStatus(files.status, { pid: process.pid, ok: errors.length === 0, errors }).catch((err: Error) =>
        log(`could not write the stop status: ${err.message}`),
      )
      await removePid()
      log(errors.length === 0 ? 'stopped' : 'stopped with errors')
      process.exit(errors.length === 0 ? 0 : 1)
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
          longLived: true,
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
