// End-to-end helpers: real storage servers (test/helpers/servers.ts), a volume made with `edfs init`,
// and mounts made with `edfs mount` — the daemon is always its own process (detached by the CLI),
// never this one. Every mount is unmounted in teardown (edfs umount, then fusermount -uz / umount -l,
// SIGKILL of the daemon by pid as a last resort), and each file checks /proc/mounts at the end.
import type { Test } from 'tap'
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import * as path from 'node:path'
import { run, type RunResult } from '../helpers/run'
import { TEST_USER, runEdfs, startServer, startServers, type RunningServer } from '../helpers/servers'
import { fuseMountsUnder, leftoverMounts, mountPoints } from '../fuse/fixtures/harness'
import { sleep, waitFor } from '../helpers/wait'
import { alive, daemonFiles } from '../../src/cli/daemon-files'

export { fuseMountsUnder, fuseUnavailable, withFuse } from '../fuse/fixtures/harness'
export { TEST_USER }

export type { RunResult }

export { run }

/** sh -c SCRIPT */
export function shell(script: string, opts: { timeoutMs?: number; cwd?: string } = {}): Promise<RunResult> {
  return run('sh', ['-c', script], opts)
}

export { sleep, waitFor }

export { alive }

export interface VolumeOptions {
  servers?: number
  replicas?: number
  chunkSize?: string
  /** Per-call server timeout of the volume, ms (edfs init --timeout). */
  timeoutMs?: number
  /** Data directories of the servers (e.g. on small disks); default: fresh temp directories. */
  dataDirs?: string[]
  /** Members beside the servers, e.g. s3:// buckets (test/helpers/ceph.ts). */
  members?: string[]
  /** More environment for every edfs command, e.g. an S3 store's credentials. */
  env?: Record<string, string>
}

export interface E2eVolume {
  /** Temp directory for this volume: configs, state (daemon logs and pid files), mount points. */
  dir: string
  cfg: string
  /** Environment for edfs commands: the password, XDG_STATE_HOME and XDG_CACHE_HOME (the disk cache). */
  env: Record<string, string>
  servers: RunningServer[]
  urls: string
}

/** Starts servers, runs `edfs init`, and removes everything in teardown (after the mounts are gone). */
export async function makeVolume(t: Test, opts: VolumeOptions = {}): Promise<E2eVolume> {
  const dir = await mkdtemp(path.join(tmpdir(), 'edfs-e2e-'))
  t.teardown(async () => {
    // Registered first, so it runs last: mounts are unmounted by then. Never remove a live mount's files.
    if (!(await fuseMountsUnder(dir)).length) await rm(dir, { recursive: true, force: true })
  })
  const servers = opts.dataDirs
    ? await Promise.all(opts.dataDirs.map((dataDir) => startServer(t, { dataDir })))
    : await startServers(t, opts.servers ?? 4)
  const urls = [...servers.map((s) => s.url), ...(opts.members ?? [])].join(',')
  const env = { ...opts.env, EDFS_PASSWORD: TEST_USER.password, XDG_STATE_HOME: path.join(dir, 'state'), XDG_CACHE_HOME: path.join(dir, 'cache') }
  const cfg = path.join(dir, 'config.json')
  const args = ['init', '--servers', urls, '--user', TEST_USER.name, '--config', cfg, '--replicas', String(opts.replicas ?? 2)]
  if (opts.chunkSize) args.push('--chunk-size', opts.chunkSize)
  if (opts.timeoutMs) args.push('--timeout', String(opts.timeoutMs))
  const r = await runEdfs(args, { env, timeoutMs: 60_000 })
  if (r.code !== 0) throw new Error(`edfs init failed (${r.code}): ${r.stderr}`)
  return { dir, cfg, env, servers, urls }
}

/** A second `edfs init` with another config file: attaches to the same volume. */
export async function attachConfig(vol: E2eVolume, name: string): Promise<string> {
  const cfg = path.join(vol.dir, name)
  const r = await runEdfs(['init', '--servers', vol.urls, '--user', TEST_USER.name, '--config', cfg], { env: vol.env, timeoutMs: 60_000 })
  if (r.code !== 0) throw new Error(`edfs init (attach) failed (${r.code}): ${r.stderr}`)
  if (!/attached to volume/.test(r.stdout)) throw new Error(`edfs init did not attach: ${r.stdout}`)
  return cfg
}

export interface E2eMount {
  mnt: string
  pid: number
  /** The `edfs mount` output. */
  result: RunResult
  umount(): Promise<RunResult>
  /** Mount the same volume at the same point again (after umount or a crash). */
  remount(extra?: { readOnly?: boolean; diskCacheSize?: string }): Promise<E2eMount>
}

export interface MountOpts {
  /** Mount point name inside vol.dir (created); default 'mnt'. */
  name?: string
  readOnly?: boolean
  cfg?: string
  cacheSize?: string
  /** --disk-cache-size (default: the daemon's, under the volume's XDG_CACHE_HOME). */
  diskCacheSize?: string
  /** --allow-other: other uids may use the mount (the volume's directory is made traversable). */
  allowOther?: boolean
  /** --commit-interval, seconds. */
  commitInterval?: number
  syncClose?: boolean
  /** --gc-interval and --gc-grace, seconds. */
  gcInterval?: number
  gcGrace?: number
  /** --repair-pass, hours (0: the queue of degraded writes only). */
  repairPass?: number
  /** --metrics [host:]port */
  metrics?: string
}

/** `edfs mount` in the background; throws if it fails. */
export async function mountVolume(t: Test, vol: E2eVolume, opts: MountOpts = {}): Promise<E2eMount> {
  const r = await tryMount(t, vol, opts)
  if (r.code !== 0) throw new Error(`edfs mount failed (${r.code}): ${r.stderr}\n${r.stdout}`)
  return mountHandle(t, vol, opts, r)
}

/** `edfs mount` that may fail (the result says); teardown still cleans up if it succeeded. */
export async function tryMount(t: Test, vol: E2eVolume, opts: MountOpts = {}): Promise<RunResult> {
  const mnt = path.join(vol.dir, opts.name ?? 'mnt')
  await mkdir(mnt, { recursive: true }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOTCONN') throw err // a stale mount there: edfs mount clears it
  })
  if (!mountPoints.includes(mnt)) mountPoints.push(mnt)
  const args = ['mount', mnt, '--config', opts.cfg ?? vol.cfg]
  if (opts.readOnly) args.push('--read-only')
  if (opts.cacheSize) args.push('--cache-size', opts.cacheSize)
  if (opts.diskCacheSize) args.push('--disk-cache-size', opts.diskCacheSize)
  if (opts.commitInterval !== undefined) args.push('--commit-interval', String(opts.commitInterval))
  if (opts.syncClose) args.push('--sync-close')
  if (opts.gcInterval !== undefined) args.push('--gc-interval', String(opts.gcInterval))
  if (opts.gcGrace !== undefined) args.push('--gc-grace', String(opts.gcGrace))
  if (opts.repairPass !== undefined) args.push('--repair-pass', String(opts.repairPass))
  if (opts.metrics !== undefined) args.push('--metrics', opts.metrics)
  if (opts.allowOther) {
    args.push('--allow-other')
    await chmod(vol.dir, 0o711) // other uids reach the mount point through it, and list nothing
  }
  const r = await runEdfs(args, { env: vol.env, timeoutMs: 150_000 })
  const pid = Number(/daemon pid (\d+)/.exec(r.stdout)?.[1] ?? 0)
  if (pid > 0) t.teardown(() => cleanupMount(vol, mnt, pid))
  return r
}

function mountHandle(t: Test, vol: E2eVolume, opts: MountOpts, result: RunResult): E2eMount {
  const mnt = path.join(vol.dir, opts.name ?? 'mnt')
  const pid = Number(/daemon pid (\d+)/.exec(result.stdout)?.[1] ?? 0)
  return {
    mnt,
    pid,
    result,
    umount: () => runEdfs(['umount', mnt], { env: vol.env, timeoutMs: 300_000 }),
    remount: (extra = {}) => mountVolume(t, vol, { ...opts, ...extra }),
  }
}

/** Teardown of one mount: edfs umount (flush), then detach whatever is left, then SIGKILL. */
export async function cleanupMount(vol: E2eVolume, mnt: string, pid: number): Promise<void> {
  if (alive(pid)) {
    for (const s of vol.servers) s.resume() // a test that stopped them may have failed midway
    const r = await runEdfs(['umount', mnt], { env: vol.env, timeoutMs: 60_000 }).catch(() => null)
    if (!r || r.code !== 0) {
      if (alive(pid)) process.kill(pid, 'SIGKILL')
    }
  }
  for (let i = 0; i < 5 && (await fuseMountsUnder(mnt)).length; i++) {
    const a = await run('fusermount', ['-uz', mnt], { timeoutMs: 15_000 })
    if (a.code !== 0) await run('umount', ['-l', mnt], { timeoutMs: 15_000 })
  }
}

/** The last `lines` lines of the daemon log of the mount at `mnt` (for failure messages). */
export async function daemonLog(vol: E2eVolume, mnt: string, lines = 40): Promise<string> {
  const { readFile } = await import('node:fs/promises')
  const text = await readFile(daemonFiles(path.resolve(mnt), path.join(vol.env.XDG_STATE_HOME!, 'edfs')).log, 'utf8').catch(() => '')
  return text.trimEnd().split('\n').slice(-lines).join('\n')
}

export { leftoverMounts }

/** The hard bound tests put on one command that touches the mount. */
export const CMD_TIMEOUT = 240_000

/** Runs `check` until it returns true or `ms` pass (bounded). */
