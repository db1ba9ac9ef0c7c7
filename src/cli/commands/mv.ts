// `edfs mv SOURCE... DEST`: rename or move inside the volume (metadata only; no data is copied).
import { Command } from 'commander'
import { rename } from 'node:fs/promises'
import { mountError, onMount } from '../beside-mount'
import { UsageError } from '../errors'
import { joinPath } from '../../volume'
import { CommonOptions, checkAborted, lookup, remoteBasename, remotePath, withCommonOptions, withVolume } from '../file-commands'
import { OpenVolume } from '../volume-open'

interface MvOptions extends CommonOptions {
  /** false with --no-clobber */
  clobber?: boolean
}

export function registerMv(program: Command): void {
  withCommonOptions(
    program
      .command('mv')
      .description('rename or move files and directories inside the volume')
      .usage('[options] SOURCE... DEST')
      .argument('<paths...>', 'sources, then the destination'),
  )
    .option('-n, --no-clobber', 'do not replace an existing file')
    .addHelpText('after', `
As with mv: when DEST is an existing directory, each SOURCE moves inside it; otherwise the single
SOURCE is renamed to DEST, replacing an existing file (not a non-empty directory).

Examples:
  edfs mv /docs/draft.txt /docs/final.txt
  edfs mv /a.txt /b.txt /archive`)
    .action((paths: string[], opts: MvOptions) => mv(paths, opts))
}

async function mv(args: string[], opts: MvOptions): Promise<void> {
  if (args.length < 2) throw new UsageError('mv needs a SOURCE and a DEST (see edfs mv --help)')
  const sources = args.slice(0, -1).map(remotePath)
  const dest = remotePath(args[args.length - 1]!)
  for (const s of sources) if (s === '/') throw new UsageError('cannot move the root directory')
  const noClobber = opts.clobber === false
  /** Each source and where it goes, checked against the volume as it is (cp/mv rules for DEST). */
  const targets = (volume: OpenVolume): { src: string; target: string }[] => {
    const destNode = lookup(volume, dest)
    const intoDir = destNode?.kind === 'dir'
    if (sources.length > 1 && !intoDir) throw new UsageError(destNode ? `target ${dest} is not a directory` : `target directory ${dest} does not exist`)
    return sources.flatMap((src) => {
      volume.namespace.resolve(src)
      const target = intoDir ? joinPath(dest, remoteBasename(src)) : dest
      if (target === src) return []
      if (noClobber && lookup(volume, target)) throw new UsageError(`${target} exists (--no-clobber)`)
      return [{ src, target }]
    })
  }
  await withVolume(opts, false, async (volume, signal) => {
    for (const { src, target } of targets(volume)) {
      checkAborted(signal)
      await volume.rename(src, target)
    }
  }, {}, async (mount, volume, signal) => {
    for (const { src, target } of targets(volume)) {
      checkAborted(signal)
      await rename(onMount(mount, src), onMount(mount, target)).catch((err) => Promise.reject(mountError(err, target)))
    }
  })
}
