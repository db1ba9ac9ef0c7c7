// Checking and repairing replication. Every blob the volume refers to belongs on its home servers:
// the first R of its rendezvous order (metadata blobs: min(N, max(3, R+1))). fsck finds which live
// servers hold a copy (presence), or with `verify` which hold a copy that still hashes to its id
// (the servers hash their own copies; bad ones are quarantined there). Each blob lands in exactly
// one bucket: healthy, misplaced, under-replicated or missing. `repair` copies the blob from a good
// copy onto every live home server that lacks it, keeps enough copies on the next servers in rank
// order while a home server is down, and trims copies off home once all home copies are in place.
import { referencedBlobs } from './gc'
import { NamespaceView, chunkBlobs } from './namespace'
import { joinPath } from './paths'
import { StoreMember, metadataCopies } from './store'
import { mapLimit } from '../protocol'

export interface FsckSource {
  readonly namespace: NamespaceView
  metadataBlobs(): string[]
}

/** What checking and repairing need of the store (the cluster client provides it). */
export interface FsckStore {
  readonly replicas: number
  members(): StoreMember[]
  rank(key: string): StoreMember[]
  locate(ids: string[]): Promise<Map<string, string[]>>
  verify(ids: string[], onProgress?: (done: number, total: number) => void): Promise<Map<string, { ok: string[]; bad: string[] }>>
  get(id: string): Promise<Buffer>
  putOn(server: string, id: string, data: Buffer): Promise<void>
  deleteOn(server: string, id: string): Promise<boolean>
}

/** Where one blob stands: how many copies it wants, and the live servers holding a good one. */
export interface Placement {
  id: string
  wanted: number
  /** Live servers with a good copy, in rank order. */
  good: string[]
}

/** What repairs did: copies written (bytes too, for rate limits) and surplus copies deleted. */
export interface RepairCounts {
  copied: number
  copiedBytes: number
  trimmed: number
}

export interface FsckOptions {
  /** Check every copy's contents on its server, not only that it exists. */
  verify?: boolean
  repair?: boolean
  concurrency?: number
  log?: (line: string) => void
  onProgress?: (what: string, done: number, total: number) => void
}

export interface FsckReport {
  blobs: number
  /** Contents were checked (`verify`), not only presence. */
  verified: boolean
  /** Exactly its wanted copies, each on a home server. */
  healthy: number
  /** Enough copies, but not all on home servers, or more copies than wanted. */
  misplaced: { id: string; copies: number; wanted: number }[]
  /** At least one copy, fewer than wanted. */
  underReplicated: { id: string; copies: number; wanted: number }[]
  /** No live server holds a good copy; with the files that use the blob. */
  missing: { id: string; files: string[] }[]
  /** Copies that failed their hash (verify), by blob: quarantined on those servers now. */
  corrupt: { id: string; servers: string[] }[]
  /** Copies written by repair (and their bytes), and surplus copies it deleted. */
  copied: number
  copiedBytes: number
  trimmed: number
  /** Blobs repair brought to healthy (or as close as the live servers allow). */
  repaired: number
  repairFailed: { id: string; reason: string }[]
}

const nameOf = (m: StoreMember): string => m.id ?? m.url

export async function fsckVolume(volume: FsckSource, store: FsckStore, opts: FsckOptions = {}): Promise<FsckReport> {
  const metadata = new Set(volume.metadataBlobs())
  const ids = [...referencedBlobs(volume.namespace, metadata)]
  const report: FsckReport = {
    blobs: ids.length, verified: !!opts.verify, healthy: 0, misplaced: [], underReplicated: [], missing: [], corrupt: [],
    copied: 0, copiedBytes: 0, trimmed: 0, repaired: 0, repairFailed: [],
  }
  const good = new Map<string, string[]>()
  if (opts.verify) {
    for (const [id, v] of await store.verify(ids, (done, total) => opts.onProgress?.('verifying', done, total))) {
      good.set(id, v.ok)
      if (v.bad.length > 0) report.corrupt.push({ id, servers: v.bad })
    }
  } else {
    for (const [id, servers] of await store.locate(ids)) good.set(id, servers)
  }
  const wantedOf = wantedCopies(store, metadata)

  const toRepair: Placement[] = []
  const missing = new Set<string>()
  for (const id of ids) {
    const p: Placement = { id, wanted: wantedOf(id), good: good.get(id) ?? [] }
    const copies = p.good.length
    if (copies === 0) missing.add(id)
    else if (copies < p.wanted) report.underReplicated.push({ id, copies, wanted: p.wanted })
    else if (!atHome(store, p)) report.misplaced.push({ id, copies, wanted: p.wanted })
    else report.healthy++
    if (copies > 0 && !atHome(store, p)) toRepair.push(p)
  }
  if (missing.size > 0) {
    const files = filesUsing(volume.namespace, missing)
    report.missing = [...missing].map((id) => ({ id, files: files.get(id) ?? (metadata.has(id) ? ['(volume metadata)'] : []) }))
  }
  if (opts.repair) {
    let done = 0
    await mapLimit(toRepair, opts.concurrency ?? 4, async (p) => {
      try {
        await repairBlob(store, p, report)
        report.repaired++
      } catch (err) {
        report.repairFailed.push({ id: p.id, reason: (err as Error).message })
        opts.log?.(`fsck: could not repair ${p.id}: ${(err as Error).message}`)
      }
      opts.onProgress?.('repairing', ++done, toRepair.length)
    })
  }
  return report
}

/** How many copies a blob wants: R, or more for the volume's metadata blobs. */
export function wantedCopies(store: Pick<FsckStore, 'members' | 'replicas'>, metadata: Set<string>): (id: string) => number {
  const meta = metadataCopies(store)
  return (id) => Math.min(store.members().length, metadata.has(id) ? meta : store.replicas)
}

/** Exactly `wanted` good copies, each on one of the blob's home servers. */
export function atHome(store: FsckStore, p: Placement): boolean {
  const home = new Set(store.rank(p.id).slice(0, p.wanted).map(nameOf))
  return p.good.length === p.wanted && p.good.every((s) => home.has(s))
}

/**
 * Brings one blob home: a copy on every live home server; while a home server is down, copies on
 * the next live servers in rank order until `wanted` live copies exist; surplus copies deleted only
 * once every home server holds one (never dropping below `wanted` on the way).
 */
export async function repairBlob(store: FsckStore, p: Placement, counts: RepairCounts): Promise<void> {
  const ranked = store.rank(p.id)
  const home = ranked.slice(0, p.wanted)
  const holders = new Set(p.good)
  let data: Buffer | null = null
  const copyTo = async (server: string) => {
    data ??= await store.get(p.id) // hash-checked on the way
    await store.putOn(server, p.id, data)
    holders.add(server)
    counts.copied++
    counts.copiedBytes += data.length
  }
  for (const m of home) if (m.up && !holders.has(nameOf(m))) await copyTo(nameOf(m))
  const liveCopies = () => ranked.filter((m) => m.up && holders.has(nameOf(m))).length
  for (const m of ranked.slice(p.wanted)) {
    if (liveCopies() >= p.wanted) break
    if (m.up && !holders.has(nameOf(m))) await copyTo(nameOf(m))
  }
  if (!home.every((m) => m.up && holders.has(nameOf(m)))) return
  // Copies counted by presence only may be rotten: check the home copies before deleting any other.
  const homeNames = new Set(home.map(nameOf))
  const checked = (await store.verify([p.id])).get(p.id)!
  if (![...homeNames].every((s) => checked.ok.includes(s))) throw new Error(`a home copy failed its hash check; kept the copies off home (run fsck --verify --repair)`)
  for (const server of checked.ok) {
    if (homeNames.has(server)) continue
    if (await store.deleteOn(server, p.id)) counts.trimmed++
    holders.delete(server)
  }
}

/** The paths of the files that refer to any of `ids`. */
export function filesUsing(ns: NamespaceView, ids: Set<string>): Map<string, string[]> {
  const out = new Map<string, string[]>()
  const visit = (dirId: string, path: string) => {
    for (const [name, childId] of ns.get(dirId)!.entries!) {
      const child = ns.get(childId)
      if (!child) continue
      const childPath = joinPath(path, name)
      if (child.kind === 'dir') visit(child.id, childPath)
      else if (child.kind === 'file') {
        for (const { ref } of chunkBlobs(child)) {
          if (ids.has(ref.id)) {
            const list = out.get(ref.id) ?? []
            list.push(childPath)
            out.set(ref.id, list)
          }
        }
      }
    }
  }
  visit(ns.rootId, '/')
  return out
}
