// Garbage collection: blobs on the servers that no committed metadata references — chunks of
// overwritten, truncated or deleted files, chunks of puts that never committed, journal blobs and
// checkpoint pieces that a newer checkpoint replaced — are deleted once they are older than a grace
// period. Only the lease holder collects (no other writer can add references meanwhile); the grace
// period protects blobs that a crashed or still-running writer uploaded but did not yet commit.
import { NamespaceView, chunkBlobs } from './namespace'
import { mapLimit } from '../protocol'
import { VolumeStore } from './store'

export interface GcOptions {
  /** Blobs whose newest copy is younger than this are kept (ms). */
  graceMs: number
  /** Count what would be freed, delete nothing. */
  dryRun?: boolean
  /** Parallel deletes. */
  concurrency?: number
  /**
   * Background collection: a blob is deleted only once it has been unreferenced for `holdMs`, as
   * seen by earlier passes (id -> when a pass first found it unreferenced; kept between passes).
   * This protects readers that still follow an older head.
   */
  unreferencedSince?: Map<string, number>
  holdMs?: number
  now?: number
  log?: (line: string) => void
}

export interface GcReport {
  /** Distinct blobs seen on the live servers, and their bytes (all copies). */
  scanned: { blobs: number; copies: number; bytes: number }
  referenced: { blobs: number; bytes: number }
  /** Referenced blobs that no live server holds (fsck's business; reported here as a warning). */
  referencedMissing: number
  /** Unreferenced but younger than the grace period: kept. */
  young: { blobs: number; bytes: number }
  /** Unreferenced and old enough: deleted (or, with dryRun, would be). */
  garbage: { blobs: number; copies: number; bytes: number }
  /** Copies actually removed (0 with dryRun). */
  removedCopies: number
  failed: { id: string; reason: string }[]
  dryRun: boolean
}

/** The two store calls gc uses. */
export type GcStore = Pick<VolumeStore, 'listAll' | 'delete'>

/** The volume as gc sees it: what it must keep (Volume.committedReferences). */
export interface GcSource {
  readonly readOnly: boolean
  committedReferences(): Promise<Set<string> | null>
}

/** Every blob id the namespace and the metadata refer to. */
export function referencedBlobs(ns: NamespaceView, metadataBlobs: Iterable<string>): Set<string> {
  const refs = new Set<string>(metadataBlobs)
  for (const node of ns.all()) {
    if (node.kind !== 'file') continue
    for (const { ref } of chunkBlobs(node)) refs.add(ref.id)
  }
  return refs
}

/** Deletes unreferenced blobs older than the grace period. The caller must hold the volume's lease. */
export async function collectGarbage(store: GcStore, referenced: Set<string>, opts: GcOptions): Promise<GcReport> {
  const now = opts.now ?? Date.now()
  const blobs = new Map<string, { size: number; copies: number; newestMs: number }>()
  const report: GcReport = {
    scanned: { blobs: 0, copies: 0, bytes: 0 }, referenced: { blobs: 0, bytes: 0 }, referencedMissing: 0,
    young: { blobs: 0, bytes: 0 }, garbage: { blobs: 0, copies: 0, bytes: 0 }, removedCopies: 0, failed: [], dryRun: !!opts.dryRun,
  }
  for await (const b of store.listAll()) {
    const seen = blobs.get(b.id)
    if (seen) {
      seen.copies++
      seen.size += b.size
      seen.newestMs = Math.max(seen.newestMs, b.mtimeMs)
    } else blobs.set(b.id, { size: b.size, copies: 1, newestMs: b.mtimeMs })
    report.scanned.copies++
    report.scanned.bytes += b.size
  }
  report.scanned.blobs = blobs.size
  const garbage: string[] = []
  const since = opts.unreferencedSince
  if (since) for (const id of since.keys()) if (referenced.has(id) || !blobs.has(id)) since.delete(id)
  const held = (id: string): boolean => {
    if (!since) return false
    const first = since.get(id) ?? now
    since.set(id, first)
    return now - first < (opts.holdMs ?? 0)
  }
  for (const [id, b] of blobs) {
    if (referenced.has(id)) {
      report.referenced.blobs++
      report.referenced.bytes += b.size
    } else if (now - b.newestMs < opts.graceMs || held(id)) {
      report.young.blobs++
      report.young.bytes += b.size
    } else {
      garbage.push(id)
      report.garbage.blobs++
      report.garbage.copies += b.copies
      report.garbage.bytes += b.size
    }
  }
  for (const id of referenced) if (!blobs.has(id)) report.referencedMissing++
  if (opts.dryRun) return report
  await mapLimit(garbage, opts.concurrency ?? 16, async (id) => {
    try {
      const removed = await store.delete(id) // read the count after the await: `+= await` would add to a stale total
      report.removedCopies += removed
    } catch (err) {
      report.failed.push({ id, reason: (err as Error).message })
      opts.log?.(`gc: could not delete ${id}: ${(err as Error).message}`)
    }
  })
  return report
}

/**
 * Collects the volume's garbage: commits pending changes first, so that what is referenced is what is
 * committed, then deletes every unreferenced blob older than the grace period. Needs a read-write
 * volume (the lease): a read-only one could miss references that the writer is adding.
 */
export async function gcVolume(volume: GcSource, store: GcStore, opts: GcOptions): Promise<GcReport> {
  if (volume.readOnly) throw new Error('gc needs the volume open for writing (it must hold the lease)')
  if (!(opts.graceMs >= 0)) throw new Error(`bad grace period ${opts.graceMs}`)
  const referenced = await volume.committedReferences()
  if (!referenced) throw new Error('the volume kept changing while gc waited for a moment with nothing to commit; try again')
  return collectGarbage(store, referenced, opts)
}
