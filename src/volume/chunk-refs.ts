// What a file's chunk is made of, as the namespace records it: a sealed blob (alone or in a pack),
// data inline in the metadata, or (metadata format 3) a base blob under newer slices. How refs are
// stored in journal entries and checkpoints, cut by a truncate, and which blobs they keep alive.

/** A chunk stored as a sealed blob on the servers, alone or (small chunks) in a pack with others. */
export interface BlobRef {
  /** Blob id of the sealed chunk, or of the pack that holds it. */
  id: string
  /** Plaintext bytes of the chunk that count; bytes of the chunk past it read as zeros. */
  len: number
  /** The sealed chunk's own plaintext length, when a truncate made `len` shorter (Range reads need it). */
  blob?: number
  /** Where the sealed chunk starts inside a pack (see packer.ts); absent: the blob is the chunk. */
  at?: number
  /** The sealing's random salt (hex, bound in its AAD; format 3 on); absent: sealed without one. */
  salt?: string
}

/**
 * A small file's data kept in the metadata itself (sealed with it): closing the file then costs one
 * round of server writes (the commit), not two (the blob, then the commit).
 */
export interface InlineRef {
  inline: Buffer
  /** Always inline.length. */
  len: number
}

/** [offset in the chunk, length, offset in the slice's plaintext]. */
export type SlicePart = [number, number, number]

/** Bytes written over a chunk, sealed together: one blob (or pack piece) holding several extents. */
export interface Slice {
  id: string
  at?: number
  salt: string
  /** Plaintext length of the sealed slice. */
  blob: number
  /** Sorted and disjoint. */
  parts: SlicePart[]
}

/**
 * A chunk as a base plus newer slices (format 3): a small write stores only its bytes, reads
 * overlay the slices oldest to newest over the base (no base: zeros), compaction folds them into a
 * new base (file-data.ts).
 */
export interface SlicedRef {
  /** Plaintext bytes of the chunk that count. */
  len: number
  base: BlobRef | null
  /** Oldest first. */
  slices: Slice[]
}

export type ChunkRef = BlobRef | InlineRef | SlicedRef

export const isBlobRef = (r: ChunkRef): r is BlobRef => 'id' in r
export const isSlicedRef = (r: ChunkRef): r is SlicedRef => 'slices' in r
export const isInlineRef = (r: ChunkRef): r is InlineRef => 'inline' in r

/** Files up to this size keep their data inline (in the metadata) instead of in a blob. */
export const INLINE_MAX = 4096

/** What identifies a stored sealing (the cache's key): its blob, and its place in a pack. */
export function chunkKey(ref: BlobRef): string {
  return ref.at === undefined ? ref.id : `${ref.id}@${ref.at}`
}

/** A slice's sealed blob, read as a chunk of its own plaintext length. */
export function sliceBlob(s: Slice): BlobRef {
  const b: BlobRef = { id: s.id, len: s.blob, salt: s.salt }
  if (s.at !== undefined) b.at = s.at
  return b
}

/** The blobs a chunk ref keeps alive (an inline chunk has none). */
export function refBlobs(r: ChunkRef): BlobRef[] {
  if (isBlobRef(r)) return [r]
  if (isSlicedRef(r)) return [...(r.base ? [r.base] : []), ...r.slices.map(sliceBlob)]
  return []
}

/**
 * A chunk ref as journal entries and checkpoints store it: [id, len] or [id, len, blobLen]; a
 * chunk in a pack (format 2) {p: [id, at, len]} or {p: [id, at, len, blobLen]}; a small file's
 * data {inline: base64}; format 3: a salted blob {b: [id, len, salt, at|null, blobLen|null]} and a
 * sliced chunk {s: [len, base|null, [[id, at|null, salt, blobLen, off, len, pos, off, len, pos, ...], ...]]}.
 */
export type StoredRef =
  | [string, number]
  | [string, number, number]
  | { p: [string, number, number] | [string, number, number, number] }
  | { inline: string }
  | { b: StoredSalted }
  | { s: [number, StoredSalted | StoredRef | null, StoredSlice[]] }
  /** Journal entries only: the chunk's ref before it, with `len`, its first `keep` slices, then `add`. */
  | { d: [number, number, StoredSlice[]] }

type StoredSlice = (string | number | null)[]

type StoredSalted = [string, number, string, number | null, number | null]

function storeBlob(r: BlobRef): StoredRef {
  if (r.salt !== undefined) return { b: [r.id, r.len, r.salt, r.at ?? null, r.blob ?? null] }
  if (r.at !== undefined) return { p: r.blob !== undefined ? [r.id, r.at, r.len, r.blob] : [r.id, r.at, r.len] }
  return r.blob !== undefined ? [r.id, r.len, r.blob] : [r.id, r.len]
}

const storeSlice = (s: Slice): StoredSlice => [s.id, s.at ?? null, s.salt, s.blob, ...s.parts.flat()]

function loadSlice(row: StoredSlice): Slice {
  const [id, at, salt, blob, ...flat] = row as [string, number | null, string, number, ...number[]]
  const parts: SlicePart[] = []
  for (let k = 0; k + 2 < flat.length; k += 3) parts.push([flat[k]!, flat[k + 1]!, flat[k + 2]!])
  const s: Slice = { id, salt, blob, parts }
  if (at !== null) s.at = at
  return s
}

export function storeRef(r: ChunkRef): StoredRef {
  if (isInlineRef(r)) return { inline: r.inline.toString('base64') }
  if (isBlobRef(r)) return storeBlob(r)
  return { s: [r.len, r.base ? storeBlob(r.base) : null, r.slices.map(storeSlice)] }
}

/** A sliced chunk from the ref before it: its base (cut to `len`), its first `keep` slices, then `add`. */
function sliceOnto(prev: ChunkRef | undefined, len: number, keep: number, add: Slice[]): SlicedRef | null {
  if (!prev || isInlineRef(prev)) return null
  const base = isBlobRef(prev) ? prev : prev.base
  const slices = isSlicedRef(prev) ? prev.slices : []
  if (keep > slices.length) return null
  return { len, base: base && base.len > len ? (cutRef(base, len) as BlobRef) : base, slices: [...slices.slice(0, keep), ...add] }
}

/**
 * For a journal entry: the ref as a change of `prev` (the chunk's ref before the entry applies)
 * when it only adds slices over it — a small write then costs its own slice in the metadata, not
 * the chunk's whole list — else stored whole.
 */
export function storeRefAfter(prev: ChunkRef | undefined, r: ChunkRef): StoredRef {
  const whole = storeRef(r)
  if (!isSlicedRef(r) || !prev || isInlineRef(prev)) return whole
  const old = isSlicedRef(prev) ? prev.slices : []
  let keep = 0
  while (keep < old.length && keep < r.slices.length && old[keep] === r.slices[keep]) keep++
  const delta = sliceOnto(prev, r.len, keep, r.slices.slice(keep))
  // Only when the change rebuilds exactly this ref (a truncate may have cut what it keeps).
  if (!delta || JSON.stringify(storeRef(delta)) !== JSON.stringify(whole)) return whole
  return { d: [r.len, keep, r.slices.slice(keep).map(storeSlice)] }
}

function loadSalted([id, len, salt, at, blob]: StoredSalted): BlobRef {
  const r: BlobRef = { id, len, salt }
  if (at !== null) r.at = at
  if (blob !== null) r.blob = blob
  return r
}

/** A stored ref; `prev` is the chunk's ref before it (needed by a journal entry's change of it). */
export function loadRef(r: StoredRef, prev?: ChunkRef): ChunkRef {
  if (Array.isArray(r)) return r.length === 3 ? { id: r[0], len: r[1], blob: r[2] } : { id: r[0], len: r[1] }
  if ('p' in r) {
    const [id, at, len, blob] = r.p
    return blob !== undefined ? { id, at, len, blob } : { id, at, len }
  }
  if ('b' in r) return loadSalted(r.b)
  if ('s' in r) {
    const [len, base, slices] = r.s
    return { len, base: base === null ? null : (loadRef(base as StoredRef) as BlobRef), slices: slices.map(loadSlice) }
  }
  if ('d' in r) {
    const [len, keep, add] = r.d
    const ref = sliceOnto(prev, len, keep, add.map(loadSlice))
    if (!ref) throw new Error('journal: a slice change for a chunk that has no such slices')
    return ref
  }
  const inline = Buffer.from(r.inline, 'base64')
  return { inline, len: inline.length }
}

/** The ref cut to its first `len` bytes (a truncate inside the chunk): a blob keeps its own length. */
export function cutRef(r: ChunkRef, len: number): ChunkRef {
  if (isInlineRef(r)) return { inline: Buffer.from(r.inline.subarray(0, len)), len }
  if (isBlobRef(r)) {
    const cut: BlobRef = { ...r, len: Math.min(r.len, len), blob: r.blob ?? r.len }
    return cut
  }
  // Slices lose what lies past the cut, so a later extension reads zeros there, not old bytes.
  const slices = r.slices
    .map((s) => ({ ...s, parts: s.parts.filter(([off]) => off < len).map(([off, n, pos]): SlicePart => [off, Math.min(n, len - off), pos]) }))
    .filter((s) => s.parts.length > 0)
  return { len: Math.min(r.len, len), base: r.base && r.base.len > len ? (cutRef(r.base, len) as BlobRef) : r.base, slices }
}

/** Bytes of the chunk below `limit` that the slices cover (overlaps counted once). */
export function sliceCoverage(slices: readonly Slice[], limit = Infinity): number {
  const spans = slices
    .flatMap((s) => s.parts.map(([off, n]) => [off, Math.min(off + n, limit)] as const))
    .filter(([a, b]) => a < b)
    .sort((a, b) => a[0] - b[0])
  let total = 0
  let end = -1
  for (const [a, b] of spans) {
    if (b <= end) continue
    total += b - Math.max(a, end)
    end = b
  }
  return total
}
