// `edfs fsck [--verify] [--repair]`: check that every chunk and metadata blob the volume refers to
// has its copies on its home servers (with --verify: copies whose contents still hash to their id),
// and restore, move and trim copies until it does.
import { Command } from 'commander'
import { fsckVolume } from '../../volume'
import { UsageError } from '../errors'
import { CommonOptions, warn, withCommonOptions, withVolume, writeStdout } from '../file-commands'

interface FsckOptions extends CommonOptions {
  verify?: boolean
  repair?: boolean
}

export function registerFsck(program: Command): void {
  withCommonOptions(
    program.command('fsck').description('check every chunk\'s copies (--verify: their contents too); --repair restores, moves and trims copies'),
  )
    .option('--verify', 'have each server hash its copies (no data crosses the network); bad copies are quarantined there')
    .option('--repair', 'copy missing and corrupt copies from a good one, move copies to their home servers, remove surplus copies')
    .addHelpText('after', `
Each blob is counted once:
  healthy           its R copies, each on a home server (metadata: more copies)
  misplaced         enough copies, but some on a server that is not its home, or too many
  under-replicated  fewer copies than R: one more failure may lose it
  missing           no live server holds a good copy: the files named can no longer be read
Without --verify a copy counts when it exists; --verify counts only copies that hash to their id.

fsck opens the volume read-only (no lease needed): it can run while the volume is mounted.
It exits 1 while any blob is missing, under-replicated or has a corrupt copy (after --repair:
while any is missing or could not be repaired).

Examples:
  edfs fsck
  edfs fsck --verify
  edfs fsck --verify --repair   # after a disk error, a lost server, or writes while one was down`)
    .action((opts: FsckOptions) => fsck(opts))
}

async function fsck(opts: FsckOptions): Promise<void> {
  await withVolume(opts, true, async (volume) => {
    const cluster = volume.session.cluster
    const tty = process.stderr.isTTY === true
    const r = await fsckVolume(volume, cluster, {
      verify: opts.verify, repair: opts.repair, log: warn,
      onProgress: tty ? (what, done, total) => process.stderr.write(`\r\x1b[2K${what}: ${done} of ${total}`) : undefined,
    })
    if (tty) process.stderr.write('\r\x1b[2K')
    const lines = [
      `checked ${r.blobs} blobs (${r.verified ? 'contents verified' : 'presence only'}): ${r.healthy} healthy, ${r.misplaced.length} misplaced, ` +
        `${r.underReplicated.length} under-replicated, ${r.missing.length} missing`,
    ]
    const corruptCopies = r.corrupt.reduce((n, c) => n + c.servers.length, 0)
    if (r.verified) lines.push(`corrupt copies: ${corruptCopies}${corruptCopies ? ' (quarantined on their servers)' : ''}`)
    const down = cluster.members().filter((m) => !m.up)
    if (down.length > 0) lines.push(`note: ${down.length} server(s) down: ${down.map((m) => m.url).join(', ')}`)
    if (opts.repair) {
      lines.push(`repaired: ${r.repaired} blobs (${r.copied} copies written, ${r.trimmed} surplus copies removed)${r.repairFailed.length ? `, failed: ${r.repairFailed.length}` : ''}`)
    }
    for (const m of r.missing.slice(0, 20)) lines.push(`missing: ${m.id} (${m.files.join(', ') || 'unreferenced'})`)
    if (r.missing.length > 20) lines.push(`... and ${r.missing.length - 20} more missing`)
    const seen = cluster.corruptions.length
    if (seen > 0) lines.push(`corrupt copies seen while reading: ${seen} (the good copy was used)`)
    await writeStdout(`${lines.join('\n')}\n`)
    const atRisk = opts.repair ? r.repairFailed.length : r.underReplicated.length + r.corrupt.length
    if (r.missing.length > 0 || atRisk > 0) {
      throw new UsageError(
        `${r.missing.length} missing and ${atRisk} ${opts.repair ? 'unrepaired' : 'under-replicated or corrupt'} blobs${opts.repair ? '' : ' (run edfs fsck --repair)'}`,
      )
    }
    if (!opts.repair && r.misplaced.length > 0) warn(`edfs: ${r.misplaced.length} blobs are off their home servers (edfs fsck --repair moves them)`)
  })
}
