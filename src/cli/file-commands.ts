// What the file commands (ls, put, get, rm, mkdir, mv, cat, status, gc) share: the common options,
// opening the volume (writers take the lease and always give it back), remote path checks, and
// Ctrl-C handling (the first interrupt cleans up and closes the volume, a second one quits at once).
import { Command } from 'commander'
import { FsError, Inode, VolumeOptions, splitPath } from '../volume'
import { UsageError } from './errors'
import { readPassword } from './password'
import { LocalMount, commitMount, localMountOf } from './beside-mount'
import { OpenVolume, openVolume } from './volume-open'

export interface CommonOptions {
  config?: string
  passwordStdin?: boolean
}

/** Adds --config and --password-stdin. */
export function withCommonOptions(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'config file (default: $EDFS_CONFIG or ~/.config/edfs/config.json)')
    .option('--password-stdin', 'read the password from standard input (else $EDFS_PASSWORD, else a prompt)')
}

export const warn = (line: string): void => {
  process.stderr.write(line.startsWith('edfs') ? `${line}\n` : `edfs: ${line}\n`)
}

/** A remote path as the volume wants it: absolute, no empty parts, no trailing '/', every name checked. */
export function remotePath(text: string): string {
  if (text === '') throw new UsageError('empty remote path')
  const abs = text.startsWith('/') ? text : `/${text}`
  let parts: string[]
  try {
    parts = splitPath(abs)
  } catch (err) {
    throw new UsageError(`bad remote path "${text}": ${(err as Error).message.replace(/^E[A-Z]+: /, '')}`)
  }
  return `/${parts.join('/')}`
}

export function remoteBasename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1)
}


/** The node at `path`, or undefined when nothing is there (other errors, e.g. ENOTDIR, are thrown). */
export function lookup(volume: OpenVolume, path: string): Inode | undefined {
  try {
    return volume.namespace.resolve(path)
  } catch (err) {
    if (err instanceof FsError && err.code === 'ENOENT') return undefined
    throw err
  }
}

/** Thrown by work that noticed the user pressed Ctrl-C. */
export class InterruptedError extends UsageError {
  constructor() {
    super('interrupted', 130)
    this.name = 'InterruptedError'
  }
}

export function checkAborted(signal: AbortSignal): void {
  if (signal.aborted) throw new InterruptedError()
}

/** SIGINT/SIGTERM: the first one aborts `signal` (work stops, cleans up, closes); the second quits. */
function trapInterrupts(): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController()
  const onSignal = (sig: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      process.stderr.write('\nedfs: interrupted again, quitting without cleaning up\n')
      process.exit(130)
    }
    process.stderr.write(`\nedfs: ${sig === 'SIGINT' ? 'interrupted' : 'terminated'}: cleaning up (interrupt again to quit at once)\n`)
    controller.abort()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    },
  }
}

/**
 * Opens the volume (read-only: no lease; read-write: takes the lease), runs `fn`, and always closes
 * the volume (a writer's close commits and gives the lease back), also after a failure or Ctrl-C.
 */
export async function withVolume<T>(
  opts: CommonOptions,
  readOnly: boolean,
  fn: (volume: OpenVolume, signal: AbortSignal) => Promise<T>,
  volumeOptions: Partial<VolumeOptions> = {},
  /**
   * A writer's way through this machine's mount, when its daemon holds the lease (beside-mount.ts):
   * given the volume read-only as of the mount's latest commit, for the same checks.
   */
  besideMount?: (mount: LocalMount, volume: OpenVolume, signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const password = await readPassword(opts)
  const trap = trapInterrupts()
  try {
    let volume: OpenVolume
    try {
      volume = await openVolume({ config: opts.config, readOnly, password, log: warn, ...volumeOptions })
    } catch (err) {
      const mount = besideMount && !readOnly ? await localMountOf(err) : null
      if (!mount) throw err
      warn(`edfs: the volume is mounted read-write at ${mount.dir} on this machine: going through the mount`)
      await commitMount(mount)
      const current = await openVolume({ config: opts.config, readOnly: true, password, log: warn })
      try {
        const result = await besideMount!(mount, current, trap.signal)
        await commitMount(mount)
        return result
      } finally {
        await current.close()
      }
    }
    let result: T
    try {
      result = await fn(volume, trap.signal)
    } catch (err) {
      await volume.close().catch((closeErr) => warn(`closing the volume failed: ${(closeErr as Error).message}`))
      if (trap.signal.aborted && !(err instanceof UsageError)) throw new InterruptedError()
      throw err
    }
    // A writer's changes are committed here: a failure is the command's failure. An interrupt
    // that came after `fn` had finished stopped nothing: the work is whole, so it is a success.
    await volume.close()
    if (trap.signal.aborted) warn('edfs: the interrupt came after the work was done: all of it is committed')
    return result
  } finally {
    trap.dispose()
  }
}

/** Writes to stdout, waiting until it is taken; resolves false once the reader went away (EPIPE). */
export function writeStdout(data: string | Buffer): Promise<boolean> {
  if (!watchingStdout) {
    watchingStdout = true
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') stdoutClosed = true
      else warn(`writing to standard output failed: ${err.message}`)
    })
  }
  if (stdoutClosed) return Promise.resolve(false)
  return new Promise((resolve) => {
    process.stdout.write(data, (err) => resolve(!err && !stdoutClosed))
  })
}

let watchingStdout = false
let stdoutClosed = false
