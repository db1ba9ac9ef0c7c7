// What `edfs mount`'s flags mean: each is checked and turned into the daemon's settings here, so the
// background starter refuses a bad flag before the daemon starts and the daemon reads the same rules.
import { stat } from 'node:fs/promises'
import * as path from 'node:path'
import { parseListenAddress, parseSize } from '../protocol'
import { UsageError } from './errors'

export interface MountOptions {
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

export function seconds(text: string, what: string): number {
  const n = Number(text)
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`${what}: not a number of seconds: "${text}"`)
  return n * 1000
}

/** --metrics as host and port (undefined: no metrics). */
export function metricsAddress(opts: MountOptions): { host: string; port: number } | undefined {
  if (opts.metrics === undefined) return undefined
  try {
    return parseListenAddress(opts.metrics)
  } catch (err) {
    throw new UsageError(`--metrics: ${(err as Error).message}`)
  }
}

/** The daemon's background repair from --repair-pass and --repair-rate. */
export function repairSettings(opts: MountOptions): { passIntervalMs: number; bytesPerSecond: number } {
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
export function backgroundGcOptions(opts: MountOptions): { intervalMs: number; graceMs: number; holdMs: number } | undefined {
  const interval = Number(opts.gcInterval)
  if (!Number.isFinite(interval) || interval < 0) throw new UsageError(`--gc-interval: not a number of seconds: "${opts.gcInterval}"`)
  if (interval === 0) return undefined
  const graceMs = seconds(opts.gcGrace, '--gc-grace')
  return { intervalMs: interval * 1000, graceMs, holdMs: graceMs }
}

/** What --cache-dir and --disk-cache-size ask for: undefined for no disk cache. */
export function diskCacheWanted(opts: MountOptions): { dir?: string; maxBytes?: number } | undefined {
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

/** Every flag checked at once: a mistake fails here, not in the daemon's log. */
export function checkMountOptions(opts: MountOptions): void {
  backgroundGcOptions(opts)
  repairSettings(opts)
  metricsAddress(opts)
  seconds(opts.commitInterval, '--commit-interval')
  parseSize(opts.cacheSize)
  diskCacheWanted(opts)
}

export async function checkMountPoint(mountPoint: string): Promise<void> {
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
