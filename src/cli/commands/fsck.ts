// `edfs fsck [--repair]`: check that every chunk and metadata blob the volume refers to has its
// copies on the live servers, and copy under-replicated ones back home.
import { Command } from 'commander'
import { fsckVolume } from '../../volume/fsck'
import { UsageError } from '../errors'
import { CommonOptions, warn, withCommonOptions, withVolume, writeStdout } from '../file-commands'

interface FsckOptions extends CommonOptions {
  repair?: boolean
}

export function registerFsck(program: Command): void {
  withCommonOptions(
    program.command('fsck').description('check that every chunk has its copies on the live servers; --repair restores missing copies'),
  )
    .option('--repair', 'copy under-replicated chunks back onto their home servers')
    .addHelpText('after', `
fsck opens the volume read-only (no lease needed): it can run while the volume is mounted.
It exits 1 while any chunk is missing on every live server or stays under-replicated.

Examples:
  edfs fsck
  edfs fsck --repair       # after a server was replaced or was down during writes`)
    .action((opts: FsckOptions) => fsck(opts))
}

async function fsck(opts: FsckOptions): Promise<void> {
  await withVolume(opts, true, async (volume) => {
    const cluster = volume.session.cluster
    const r = await fsckVolume(volume, cluster, { repair: opts.repair, log: warn })
    const lines = [`checked ${r.blobs} blobs: ${r.healthy} healthy, ${r.underReplicated.length} under-replicated, ${r.missing.length} missing`]
    const down = cluster.members().filter((m) => !m.up)
    if (down.length > 0) lines.push(`note: ${down.length} server(s) down: ${down.map((m) => m.url).join(', ')}`)
    if (opts.repair) lines.push(`repaired: ${r.repaired}${r.repairFailed.length ? `, failed: ${r.repairFailed.length}` : ''}`)
    for (const m of r.missing.slice(0, 20)) lines.push(`missing: ${m.id} (${m.files.join(', ') || 'unreferenced'})`)
    if (r.missing.length > 20) lines.push(`... and ${r.missing.length - 20} more missing`)
    const corrupt = cluster.corruptions.length
    if (corrupt > 0) lines.push(`corrupt copies seen while reading: ${corrupt} (the good copy was used)`)
    await writeStdout(`${lines.join('\n')}\n`)
    const unrepaired = opts.repair ? r.repairFailed.length : r.underReplicated.length
    if (r.missing.length > 0 || unrepaired > 0) {
      throw new UsageError(`${r.missing.length} missing and ${unrepaired} under-replicated blobs${opts.repair ? '' : ' (run edfs fsck --repair)'}`)
    }
  })
}
