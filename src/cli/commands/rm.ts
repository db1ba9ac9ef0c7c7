// `edfs rm [-r] [-f] PATH...`: remove files (and, with -r, directories with everything in them).
import { Command } from 'commander'
import { rm as rmLocal } from 'node:fs/promises'
import { FsError, Inode, joinPath } from '../../volume'
import { mountError, onMount } from '../beside-mount'
import { UsageError } from '../errors'
import { CommonOptions, checkAborted, lookup, remotePath, withCommonOptions, withVolume } from '../file-commands'
import { OpenVolume } from '../volume-open'

interface RmOptions extends CommonOptions {
  recursive?: boolean
  force?: boolean
}

export function registerRm(program: Command): void {
  withCommonOptions(
    program
      .command('rm')
      .description('remove files, or directories with -r')
      .argument('<paths...>', 'files or directories in the volume'),
  )
    .option('-r, --recursive', 'remove directories and their contents')
    .option('-f, --force', 'ignore paths that do not exist')
    .addHelpText('after', `
The space of removed files is given back by \`edfs gc\` (after its grace period).

Examples:
  edfs rm /docs/old.pdf
  edfs rm -r /tmp-build
  edfs rm -rf /maybe-there`)
    .action((paths: string[], opts: RmOptions) => rm(paths, opts))
}

async function rm(args: string[], opts: RmOptions): Promise<void> {
  const paths = args.map(remotePath)
  for (const p of paths) if (p === '/') throw new UsageError('refusing to remove the root directory')
  /** What `path` names, checked as rm's flags want; null: absent, and -f says skip it. */
  const target = (volume: OpenVolume, path: string): Inode | null => {
    const node = lookup(volume, path)
    if (!node) {
      if (opts.force) return null
      throw new FsError('ENOENT', `no such file or directory: ${path}`)
    }
    if (node.kind === 'dir' && !opts.recursive) throw new UsageError(`cannot remove ${path}: is a directory (use -r)`)
    return node
  }
  await withVolume(opts, false, async (volume, signal) => {
    for (const path of paths) {
      checkAborted(signal)
      const node = target(volume, path)
      if (node?.kind === 'dir') await removeTree(volume, node, path, signal)
      else if (node) await volume.unlink(path)
    }
  }, {}, async (mount, volume, signal) => {
    for (const path of paths) {
      checkAborted(signal)
      if (target(volume, path)) await rmLocal(onMount(mount, path), { recursive: true }).catch((err) => Promise.reject(mountError(err, path)))
    }
  })
}

/** Removes everything below and then the directory itself (children first). */
async function removeTree(volume: OpenVolume, dir: Inode, path: string, signal: AbortSignal): Promise<void> {
  for (const [name, id] of [...dir.entries!]) {
    checkAborted(signal)
    const child = volume.namespace.get(id)
    const childPath = joinPath(path, name)
    if (child?.kind === 'dir') await removeTree(volume, child, childPath, signal)
    else await volume.unlink(childPath)
  }
  await volume.rmdir(path)
}
