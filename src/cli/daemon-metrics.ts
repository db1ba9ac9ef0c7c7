// Prometheus metrics of the mount daemon (`edfs mount --metrics ADDR`, off by default): the chunk
// cache (memory and disk), the write-back pipeline, commits, each server as the daemon sees it, the cluster's
// failovers and corruptions, background repair. Read from the live objects at scrape time.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'
import { pulledCounter, pulledGauge } from '../protocol/metrics-endpoint'
import { OpenVolume } from './volume-open'

export function daemonRegistry(volume: OpenVolume): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'edfs_mount_' })
  const cluster = volume.session.cluster
  const gauge = (name: string, help: string, read: () => number) => pulledGauge(registry, name, help, read)
  const counter = (name: string, help: string, read: () => number) => pulledCounter(registry, name, help, read)
  gauge('edfs_mount_cache_bytes', 'Decrypted chunk bytes held in the cache', () => volume.cache.bytes)
  counter('edfs_mount_cache_hits_total', 'Chunk reads served from the cache', () => volume.cache.hits)
  counter('edfs_mount_cache_misses_total', 'Chunk reads that asked the servers', () => volume.cache.misses)
  const disk = volume.cache.disk
  if (disk) {
    gauge('edfs_mount_disk_cache_bytes', 'Sealed chunk bytes kept on the local disk', () => disk.bytes)
    counter('edfs_mount_disk_cache_hits_total', 'Reads of sealed bytes served from the local disk', () => disk.hits)
    counter('edfs_mount_disk_cache_misses_total', 'Reads of sealed bytes the local disk did not have', () => disk.misses)
    counter('edfs_mount_disk_cache_corrupt_total', 'Disk cache entries that failed their check (dropped, fetched again)', () => disk.corrupt)
  }
  gauge('edfs_mount_dirty_bytes', 'Bytes written but not yet stored on the servers', () => volume.dirtyBytes)
  counter('edfs_mount_commits_total', 'Commits of the volume\'s metadata', () => volume.commits.count)
  counter('edfs_mount_commit_failures_total', 'Commits that failed (retried)', () => volume.commits.failed)
  counter('edfs_mount_commit_seconds_total', 'Time spent in commits (÷ commits: the mean latency)', () => volume.commits.seconds)
  const c = cluster.counters
  counter('edfs_mount_failovers_total', 'Reads that went on to another server', () => c.failovers)
  counter('edfs_mount_corrupt_copies_total', 'Copies that served bytes failing their check', () => c.corruptions)
  counter('edfs_mount_degraded_writes_total', 'Blobs stored on fewer than R home servers', () => c.degradedWrites)
  counter('edfs_mount_retries_total', 'Calls retried after a transient failure', () => c.retries)
  type Member = ReturnType<typeof cluster.members>[number]
  /** One series per server, read at scrape time: a gauge, or a counter (`_total`). */
  const perServer = (name: string, help: string, read: (m: Member) => number, kind: 'gauge' | 'counter' = 'gauge') => {
    const config = { name, help, labelNames: ['server'], registers: [registry] }
    const each = (put: (labels: { server: string }, value: number) => void) => cluster.members().forEach((m) => put({ server: m.url }, read(m)))
    if (kind === 'gauge') new Gauge({ ...config, collect() { this.reset(); each((l, v) => this.set(l, v)) } })
    else new Counter({ ...config, collect() { this.reset(); each((l, v) => this.inc(l, v)) } })
  }
  perServer('edfs_mount_server_up', '1 while the server answers', (m) => (m.up ? 1 : 0))
  perServer('edfs_mount_server_health', 'Share of recent calls that succeeded (0..1)', (m) => m.health)
  perServer('edfs_mount_server_latency_seconds', 'Smoothed latency of recent calls', (m) => (m.latencyMs ?? 0) / 1000)
  perServer('edfs_mount_server_sent_bytes_total', 'Blob and record bytes stored on the server (bodies)', (m) => m.sentBytes, 'counter')
  perServer('edfs_mount_server_received_bytes_total', 'Blob and record bytes read from the server (bodies)', (m) => m.receivedBytes, 'counter')
  if (volume.repair) {
    const repair = volume.repair
    gauge('edfs_mount_repair_queued_blobs', 'Blobs written degraded, waiting to be copied home', () => repair.status().queued)
    gauge('edfs_mount_repair_last_pass_timestamp_seconds', 'When the last full repair pass finished (0: never)', () => (repair.status().lastPassFinishedAt ?? 0) / 1000)
    counter('edfs_mount_repair_copies_total', 'Copies written by background repair', () => repair.status().copied)
    counter('edfs_mount_repair_trimmed_total', 'Surplus copies removed by background repair', () => repair.status().trimmed)
    counter('edfs_mount_repair_failures_total', 'Blobs background repair could not fix yet', () => repair.status().failed)
  }
  return registry
}
