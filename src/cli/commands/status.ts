// `edfs status`: each server (up/down, latency, space, bytes stored), the volume (files,
// directories, bytes, chunks, under-replicated and missing chunks), and who holds the write lease.
import { readFile } from 'node:fs/promises'
import { Command } from 'commander'
import { memberClient } from '../../cluster'
import { Lease, RepairQueue, chunkBlobs, lastDiskCacheStats } from '../../volume'
import { configPath, loadConfig } from '../config'
import { readPassword } from '../password'
import { diskCacheDir, repairQueueFile } from '../state-dir'
import { formatSize } from '../../protocol'
import { CommonOptions, warn, withCommonOptions, writeStdout } from '../file-commands'
import { openVolume } from '../volume-open'

export function registerStatus(program: Command): void {
  withCommonOptions(
    program
      .command('status')
      .description('servers (up/down, latency, space, bytes stored), the volume (files, bytes, chunks, under-replicated), the lease holder'),
  )
    .addHelpText('after', `
A server that does not answer is shown DOWN; the volume part still works while the servers that
answer hold a copy of the metadata.

Examples:
  edfs status
  edfs status --config ~/.config/edfs/work.json`)
    .action((opts: CommonOptions) => status(opts))
}

interface ServerRow {
  url: string
  id: string
  up: boolean
  latencyMs: number | null
  free?: number
  total?: number
  /** The sizes are configured (an S3 member), not measured. */
  configured?: boolean
  stored?: number
  blobs?: number
  quarantined?: number
  lastScrub?: number | null
  error?: string
}

async function probe(url: string, user: string, password: string, timeoutMs: number, ca?: Buffer): Promise<ServerRow> {
  const client = memberClient({ url, user, password, timeoutMs: Math.min(timeoutMs, 5000), ca, maxSockets: 2 })
  const row: ServerRow = { url, id: '-', up: false, latencyMs: null }
  try {
    const t0 = performance.now()
    const h = await client.health()
    row.latencyMs = performance.now() - t0
    row.up = true
    Object.assign(row, { id: h.id, free: h.freeBytes, total: h.totalBytes, configured: h.capacityConfigured })
    const s = await client.stats()
    Object.assign(row, { stored: s.bytesStored, blobs: s.blobCount, quarantined: s.quarantined, lastScrub: s.scrub?.lastBackgroundPassFinishedAt })
  } catch (err) {
    row.error = (err as Error).message
  } finally {
    client.close()
  }
  return row
}

/** The background repair of a mount on this machine: its queue and last full pass. */
async function repairLine(volumeId: string): Promise<string> {
  const file = repairQueueFile(volumeId)
  const q = await RepairQueue.load(file)
  const last = q.lastPassFinishedAt ? new Date(q.lastPassFinishedAt).toISOString() : 'none yet'
  return `  repair (mounts on this machine): ${q.size} chunks queued to go home${q.overflow ? ' and a full pass due' : ''}; last full pass: ${last}`
}

/** The disk cache of mounts on this machine (default directory): size, and the hit rate a mount last saved. */
async function diskCacheLine(volumeId: string): Promise<string> {
  const dir = diskCacheDir(volumeId)
  const s = await lastDiskCacheStats(dir)
  if (!s) return `  disk cache (mounts on this machine): none in ${dir}`
  const reads = s.hits + s.misses
  const rate = reads ? `hit rate ${((100 * s.hits) / reads).toFixed(1)} % of ${reads} reads` : 'no reads yet'
  const corrupt = s.corrupt ? `, ${s.corrupt} corrupt entries dropped` : ''
  return `  disk cache (mounts on this machine): ${formatSize(s.bytes)} of ${formatSize(s.maxBytes)} in ${s.files} files, ${rate}${corrupt} (as of ${new Date(s.at).toISOString()}, ${dir})`
}

/** ", 2 quarantined, scrubbed <date>" when the server reports it. */
function scrubText(r: ServerRow): string {
  const parts: string[] = []
  if (r.quarantined) parts.push(`${r.quarantined} corrupt copies quarantined`)
  if (r.lastScrub) parts.push(`last full scrub ${new Date(r.lastScrub).toISOString()}`)
  return parts.length ? `, ${parts.join(', ')}` : ''
}

async function status(opts: CommonOptions): Promise<void> {
  const password = await readPassword(opts)
  const file = configPath(opts.config)
  const config = await loadConfig(file)
  const ca = config.ca ? await readFile(config.ca) : undefined
  const rows = await Promise.all(config.servers.map((s) => probe(s.url, config.user, password, config.timeoutMs, ca)))
  const out: string[] = [`config: ${file}`, `user: ${config.user}`, '', 'servers:']
  const table = rows.map((r) => [
    r.up ? 'up' : 'DOWN', r.url, r.id.slice(0, 12),
    r.latencyMs === null ? '-' : `${r.latencyMs.toFixed(1)} ms`,
    r.free === undefined ? '-' : r.configured ? `capacity ${formatSize(r.total ?? 0)} (configured: object stores report none)` : `${formatSize(r.free)} free of ${formatSize(r.total ?? 0)}`,
    r.stored === undefined ? (r.error && r.up ? `stats: ${r.error}` : r.error ?? '-') : `${formatSize(r.stored)} stored in ${r.blobs} blobs${scrubText(r)}`,
  ])
  const widths = table[0]!.map((_, k) => Math.max(...table.map((row) => row[k]!.length)))
  for (const row of table) out.push(`  ${row.map((c, k) => (k === row.length - 1 ? c : c.padEnd(widths[k]!))).join('  ')}`)
  await writeStdout(`${out.join('\n')}\n`)

  const volume = await openVolume({ config: opts.config, readOnly: true, password, log: warn })
  try {
    const ns = volume.namespace
    let files = 0, dirs = 0, links = 0, bytes = 0
    const chunks = new Set<string>()
    const fileChunks: string[][] = []
    for (const node of ns.all()) {
      if (node.kind === 'dir') dirs++
      else if (node.kind === 'symlink') links++
      else {
        files++
        bytes += node.size
        const ids = chunkBlobs(node).map(({ ref }) => ref.id)
        for (const id of ids) chunks.add(id)
        fileChunks.push(ids)
      }
    }
    const where = await volume.session.cluster.locate([...chunks])
    const unreadable = fileChunks.filter((ids) => ids.some((id) => where.get(id)!.length === 0)).length
    const r = volume.head.replicas
    let under = 0, missing = 0
    for (const servers of where.values()) {
      if (servers.length === 0) missing++
      else if (servers.length < r) under++
    }
    const head = volume.head
    const lease = await Lease.current(volume.session.cluster, volume.session.keys)
    const v = [
      '',
      `volume ${head.volumeId}:`,
      `  ${files} files, ${dirs} directories${links ? `, ${links} symbolic links` : ''}, ${formatSize(bytes)} (${bytes} bytes)`,
      `  ${chunks.size} chunks of up to ${formatSize(head.chunkSize)}, replicas ${r}: ${under} under-replicated, ${missing} on no live server`,
      ...(unreadable ? [`  ${unreadable} files unreadable (a chunk on no live server; edfs ls marks them)`] : []),
      `  commit ${head.seq} at ${new Date(head.updatedAt).toISOString()}; checkpoint ${head.checkpoint.seq} + ${head.journalBlobs ?? head.journal.length} journal blobs (${formatSize(head.journalBytes)})`,
      `  lease: ${lease ? `held by ${lease.holder} since ${new Date(lease.sinceMs).toISOString()} (until ${new Date(lease.expiresMs).toISOString()})` : 'free (no writer)'}`,
      await repairLine(config.volumeId),
      await diskCacheLine(config.volumeId),
    ]
    await writeStdout(`${v.join('\n')}\n`)
  } finally {
    await volume.close()
  }
}
