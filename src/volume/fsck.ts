// Checking and repairing replication: every blob the volume refers to should have R live copies
// (its metadata blobs min(N, max(3, R+1))). `repair` copies an under-replicated blob back onto its
// home servers from a copy that passes the hash check.
import { referencedBlobs } from './gc'
import { Namespace, chunkBlobs } from './namespace'
import { joinPath } from './paths'
import { VolumeStore, metadataCopies } from './store'

export interface FsckSource {
  readonly namespace: Namespace
  metadataBlobs(): string[]
}

export type FsckStore = Pick<VolumeStore, 'locate' | 'get' | 'put' | 'replicas' | 'members'>

export interface FsckReport {
  blobs: number
  healthy: number
  /** Blobs with at least one live copy but fewer than wanted. */
  underReplicated: { id: string; copies: number; wanted: number }[]
  /** Blobs that no live server holds, with the files that use them. */
  missing: { id: string; files: string[] }[]
  repaired: number
  repairFailed: { id: string; reason: string }[]
}

export async function fsckVolume(
  volume: FsckSource, store: FsckStore, opts: { repair?: boolean; concurrency?: number; log?: (line: string) => void } = {},
): Promise<FsckReport> {
  const metadata = new Set(volume.metadataBlobs())
  const ids = [...referencedBlobs(volume.namespace, metadata)]
  const where = await store.locate(ids)
  const report: FsckReport = { blobs: ids.length, healthy: 0, underReplicated: [], missing: [], repaired: 0, repairFailed: [] }
  const wantedOf = (id: string) => Math.min(store.members().length, metadata.has(id) ? metadataCopies(store as VolumeStore) : store.replicas)
  const missing = new Set<string>()
  for (const id of ids) {
    const copies = where.get(id)?.length ?? 0
    const wanted = wantedOf(id)
    if (copies === 0) missing.add(id)
    else if (copies < wanted) report.underReplicated.push({ id, copies, wanted })
    else report.healthy++
  }
  if (missing.size > 0) {
    const files = filesUsing(volume.namespace, missing)
    report.missing = [...missing].map((id) => ({ id, files: files.get(id) ?? (metadata.has(id) ? ['(volume metadata)'] : []) }))
  }
  if (opts.repair) {
    let next = 0
    const worker = async () => {
      while (next < report.underReplicated.length) {
        const { id, wanted } = report.underReplicated[next++]!
        try {
          const data = await store.get(id)
          await store.put(id, data, wanted)
          report.repaired++
        } catch (err) {
          report.repairFailed.push({ id, reason: (err as Error).message })
          opts.log?.(`fsck: could not repair ${id}: ${(err as Error).message}`)
        }
      }
    }
    await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 4) }, worker))
  }
  return report
}

/** The paths of the files that refer to any of `ids`. */
export function filesUsing(ns: Namespace, ids: Set<string>): Map<string, string[]> {
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
