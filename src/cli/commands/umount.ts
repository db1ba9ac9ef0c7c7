// `edfs umount MOUNTPOINT`: signals the daemon serving it, waits for it to exit, and reports what
// the daemon's stop status says (daemon-files.ts): whether the last flush and commit succeeded.
import * as path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Command } from 'commander'
import { findFuseMount, forceUnmount } from '../../fuse/mount-points'
import { alive, daemonFiles, findDaemon, readStopStatus } from '../daemon-files'
import { UsageError } from '../errors'
import { seconds } from '../mount-options'

interface UmountOptions {
  timeout: string
}

export function registerUmount(program: Command): void {
  program
    .command('umount')
    .alias('unmount')
    .argument('<mountpoint>')
    .description('unmount: the daemon flushes and commits everything, then exits')
    .option('--timeout <seconds>', 'how long to wait for the daemon to finish', '300')
    .action((mountPoint: string, opts: UmountOptions) => umount(mountPoint, opts))
}

async function umount(target: string, opts: UmountOptions): Promise<void> {
  const mountPoint = path.resolve(target)
  const waitMs = seconds(opts.timeout, '--timeout')
  const pid = await findDaemon(mountPoint)
  if (pid) {
    const files = daemonFiles(mountPoint)
    process.kill(pid, 'SIGTERM')
    const deadline = Date.now() + waitMs
    while (alive(pid)) {
      if (Date.now() > deadline) {
        throw new UsageError(`the daemon (pid ${pid}) has not finished within ${opts.timeout} s (still uploading?); it keeps going: see ${files.log}`)
      }
      await sleep(100)
    }
    if (await findFuseMount(mountPoint)) await forceUnmount(mountPoint) // it died before unmounting
    const status = await readStopStatus(files.status, pid)
    if (!status) throw new UsageError(`unmounted ${mountPoint}, but the daemon (pid ${pid}) ended without reporting: changes since the last commit may be lost (see ${files.log})`)
    if (!status.ok) throw new UsageError(`unmounted ${mountPoint}, but the last changes could not all be stored:\n${status.errors.join('\n')}\n(see ${files.log})`)
    process.stdout.write(`edfs: unmounted ${mountPoint}\n`)
    return
  }
  const entry = await findFuseMount(mountPoint)
  if (!entry) throw new UsageError(`${mountPoint} is not mounted`)
  if (entry.type !== 'fuse.edfs') throw new UsageError(`${mountPoint} is a ${entry.type} mount, not edfs: not touching it`)
  await forceUnmount(mountPoint)
  process.stdout.write(`edfs: ${mountPoint}: no daemon was serving it; cleared the ${entry.type} mount\n`)
}
