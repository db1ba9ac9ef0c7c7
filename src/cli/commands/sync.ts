// `edfs sync [PATH...]`: returns once everything written to the mounts before it is committed on the
// servers (data and metadata). sync(1) cannot do it: syncfs never reaches a libfuse 2 daemon. This
// fsyncs PATH (a directory fsync reaches the daemon as FSYNCDIR), which the daemon answers by
// committing everything; without PATH, every edfs mount of this machine.
import { open } from 'node:fs/promises'
import * as path from 'node:path'
import { Command } from 'commander'
import { listMounts, type MountEntry } from '../../fuse/mount-points'
import { UsageError } from '../errors'

export function registerSync(program: Command): void {
  program
    .command('sync')
    .argument('[paths...]', 'files or directories on edfs mounts (default: every edfs mount)')
    .description('commit everything written to the mounts so far: returns once it is on the servers')
    .addHelpText('after', `
close(2) on a mount returns before the file is committed (write-back, within the mount's
--commit-interval); fsync(2) of a file, this command and umount are the durability points.

Examples:
  edfs sync                    # every edfs mount on this machine
  cp -r photos /mnt/dfs/ && edfs sync /mnt/dfs`)
    .action((paths: string[]) => syncMounts(paths))
}

/** The edfs mount that holds `target` (the longest mount point that is a prefix of it). */
function mountOf(target: string, mounts: MountEntry[]): MountEntry | undefined {
  const inside = (m: MountEntry) => target === m.mountPoint || target.startsWith(m.mountPoint.endsWith('/') ? m.mountPoint : `${m.mountPoint}/`)
  const holding = mounts.filter(inside).sort((a, b) => b.mountPoint.length - a.mountPoint.length)[0]
  return holding && isEdfs(holding) ? holding : undefined
}

function isEdfs(m: MountEntry): boolean {
  return m.type === 'fuse.edfs'
}

async function syncMounts(paths: string[]): Promise<void> {
  const mounts = await listMounts()
  const targets = paths.length > 0 ? paths.map((p) => path.resolve(p)) : mounts.filter(isEdfs).map((m) => m.mountPoint)
  for (const target of targets) {
    if (!mountOf(target, mounts)) throw new UsageError(`${target} is not on an edfs mount`)
    let fh
    try {
      fh = await open(target, 'r')
      await fh.sync()
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      if (e.code === 'EIO') throw new UsageError(`${target}: the volume could not commit (EIO); the mount's log says why`)
      throw new UsageError(`${target}: ${e.code ?? ''} ${e.message}`.trim())
    } finally {
      await fh?.close()
    }
  }
}
