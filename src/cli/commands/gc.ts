// `edfs gc [--dry-run] [--grace 1h]`: delete blobs that no committed metadata references (old chunks
// of overwritten or removed files, chunks of puts that never committed, replaced journal blobs and
// checkpoint pieces) once older than the grace period. Holds the lease while it runs.
import { Command } from 'commander'
import { gcVolume } from '../../volume'
import { UsageError } from '../errors'
import { CommonOptions, warn, withCommonOptions, withVolume, writeStdout } from '../file-commands'
import { formatSize } from '../../protocol'

const GRACE_DEFAULT = '1h'

interface GcOptions extends CommonOptions {
  dryRun?: boolean
  grace: string
}

export function registerGc(program: Command): void {
  withCommonOptions(
    program
      .command('gc')
      .description('delete chunks and metadata blobs that nothing references any more, after a grace period'),
  )
    .option('-n, --dry-run', 'show what would be freed, delete nothing')
    .option('--grace <duration>', 'keep unreferenced blobs younger than this (e.g. 0, 90s, 30m, 1h, 2d)', GRACE_DEFAULT)
    .addHelpText('after', `
gc takes the volume's write lease (like put). While the volume is mounted read-write on this
machine, gc asks that mount's daemon for a pass instead (it collects in the background anyway,
edfs mount --gc-interval, with its own --gc-grace).
The grace period protects data that a writer uploaded but has not committed yet (for example a put
running on another machine that lost its lease).

Examples:
  edfs gc --dry-run
  edfs gc
  edfs gc --grace 0        # everything unreferenced, now (no writer may be running)`)
    .action((opts: GcOptions) => gc(opts))
}

export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*$/i.exec(text)
  if (!m) throw new UsageError(`not a duration: "${text}" (examples: 0, 90s, 30m, 1h, 2d)`)
  const unit = (m[2] ?? 's').toLowerCase()
  const factor: Record<string, number> = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000 }
  return Math.round(Number(m[1]) * factor[unit]!)
}

async function gc(opts: GcOptions): Promise<void> {
  const graceMs = parseDuration(opts.grace)
  await withVolume(opts, false, async (volume) => {
    const r = await gcVolume(volume, volume.session.cluster, { graceMs, dryRun: opts.dryRun, log: warn })
    const lines = [
      `scanned ${r.scanned.blobs} blobs (${r.scanned.copies} copies, ${formatSize(r.scanned.bytes)}) on the live servers`,
      `referenced: ${r.referenced.blobs} blobs (${formatSize(r.referenced.bytes)})`,
      `kept (younger than ${opts.grace}): ${r.young.blobs} blobs (${formatSize(r.young.bytes)})`,
      opts.dryRun
        ? `would free: ${r.garbage.blobs} blobs (${r.garbage.copies} copies, ${formatSize(r.garbage.bytes)})`
        : `freed: ${r.garbage.blobs - r.failed.length} blobs (${r.removedCopies} copies, ${formatSize(r.garbage.bytes)})`,
    ]
    const down = volume.session.cluster.members().filter((m) => !m.up)
    if (down.length > 0) lines.push(`note: ${down.length} server(s) down (${down.map((m) => m.url).join(', ')}); their copies were not collected`)
    if (r.referencedMissing > 0) lines.push(`warning: ${r.referencedMissing} referenced blobs are on no live server (see edfs fsck)`)
    await writeStdout(`${lines.join('\n')}\n`)
    if (r.failed.length > 0) throw new UsageError(`${r.failed.length} blobs could not be deleted (first: ${r.failed[0]!.id}: ${r.failed[0]!.reason})`)
  }, {}, async (mount) => {
    // The daemon holds the lease and collects garbage itself, with its own --gc-grace: ask it for a pass now.
    if (opts.dryRun || opts.grace !== GRACE_DEFAULT) throw new UsageError(`--dry-run and --grace are not available while ${mount.dir} is mounted: its daemon collects with its own --gc-grace`)
    process.kill(mount.pid, 'SIGUSR2')
    await writeStdout(`asked the mount's daemon (pid ${mount.pid}, ${mount.dir}) for a garbage collection pass now; what it frees is in its log\n`)
  })
}
