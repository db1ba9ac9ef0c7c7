// `edfs mount MOUNTPOINT`: by default in the background. It starts itself again, detached, with
// --foreground (the daemon: src/cli/mount-daemon.ts), hands it the password on a pipe (never in
// argv), and returns once the mount answers (or prints the tail of the daemon's log and fails). The
// daemon's log, pid file and stop status live in the state directory (src/cli/daemon-files.ts);
// `edfs umount` (umount.ts) stops it.
import { spawn } from 'node:child_process'
import { open, mkdir } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import * as path from 'node:path'
import { Command } from 'commander'
import { findFuseMount, prepareMountPoint, probeMountPoint } from '../../fuse/mount-points'
import { formatSize } from '../../protocol'
import { DEFAULT_CACHE_BYTES } from '../../volume'
import { daemonFiles, findDaemon, tail } from '../daemon-files'
import { UsageError } from '../errors'
import { MOUNT_OPTIONS_HELP } from '../mount-helper'
import { MountOptions, checkMountOptions, checkMountPoint, seconds } from '../mount-options'
import { readPassword } from '../password'
import { NODE_FLAGS } from '../self'

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
    .action((mountPoint: string, opts: MountOptions) => (opts.foreground ? runForeground(mountPoint, opts) : startBackground(mountPoint, opts)))
}

// ---- edfs mount (background) ----

/** The daemon itself, loaded only here: its modules (the FUSE binding, prom-client) cost every other command their load time. */
async function runForeground(mountPoint: string, opts: MountOptions): Promise<void> {
  const { runDaemon } = await import('../mount-daemon')
  await runDaemon(mountPoint, opts)
}

async function startBackground(target: string, opts: MountOptions): Promise<void> {
  const mountPoint = path.resolve(target)
  const waitMs = seconds(opts.timeout, '--timeout')
  checkMountOptions(opts) // fail here, not in the daemon's log
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
