// `edfs mkdir [-p] PATH...`: create directories in the volume.
import { Command } from 'commander'
import { FsError } from '../../volume'
import { mkdir } from 'node:fs/promises'
import { mountError, onMount } from '../beside-mount'
import { CommonOptions, checkAborted, lookup, remotePath, withCommonOptions, withVolume } from '../file-commands'

interface MkdirOptions extends CommonOptions {
  parents?: boolean
  mode: string
}

export function registerMkdir(program: Command): void {
  withCommonOptions(
    program
      .command('mkdir')
      .description('create directories in the volume')
      .argument('<paths...>', 'directories to create'),
  )
    .option('-p, --parents', 'create missing parents; no error if the directory exists')
    .option('-m, --mode <octal>', 'permission bits', '755')
    .addHelpText('after', `
Examples:
  edfs mkdir /docs
  edfs mkdir -p /photos/2024/summer`)
    .action((paths: string[], opts: MkdirOptions) => mkdirs(paths, opts))
}

async function mkdirs(args: string[], opts: MkdirOptions): Promise<void> {
  const paths = args.map(remotePath)
  if (!/^[0-7]{1,4}$/.test(opts.mode)) throw new FsError('EINVAL', `not an octal mode: ${opts.mode}`)
  const mode = parseInt(opts.mode, 8)
  const uid = process.getuid?.() ?? 0
  const gid = process.getgid?.() ?? 0
  await withVolume(opts, false, async (volume, signal) => {
    for (const path of paths) {
      checkAborted(signal)
      if (!opts.parents) {
        await volume.mkdir(path, mode, uid, gid)
        continue
      }
      let at = ''
      for (const part of path.split('/').filter(Boolean)) {
        at += `/${part}`
        const node = lookup(volume, at)
        if (!node) await volume.mkdir(at, mode, uid, gid)
        else if (node.kind !== 'dir') throw new FsError('ENOTDIR', `not a directory: ${at}`)
      }
    }
  }, {}, async (mount, _volume) => {
    for (const path of paths) await mkdir(onMount(mount, path), { recursive: !!opts.parents, mode }).catch((err) => Promise.reject(mountError(err, path)))
  })
}
