// What the volume needs from the storage below it. The cluster client (src/cluster) provides it.

import type { ByteRange } from '../protocol'

// The port's own types, so the volume imports them from here only: the byte range a read asks for,
// and casRecord's refusal (the record is at `version`, not the one expected).
export type { ByteRange }
export { VersionConflictError } from '../protocol'

export interface StoreMember {
  url: string
  id: string | undefined
  up: boolean
}

export interface RecordCopy {
  server: string
  version: number
  value: Buffer | null
}

export interface VolumeStore {
  readonly replicas: number
  members(): StoreMember[]
  rank(key: string): StoreMember[]
  /** Rejects with an error whose `full` is true when no server had space for it (see isStoreFull). */
  put(id: string, data: Buffer, copies?: number): Promise<{ servers: string[]; degraded: boolean }>
  get(id: string): Promise<Buffer>
  /** Bytes `range` of a blob as `check` makes them; `check` must not keep the bytes (their memory is reused). */
  getRange<T>(id: string, range: ByteRange, check: (bytes: Buffer) => T): Promise<T>
  getMany(ids: string[], onBlob?: (id: string, data: Buffer) => void): Promise<Map<string, Buffer>>
  locate(ids: string[]): Promise<Map<string, string[]>>
  delete(id: string): Promise<number>
  listAll(): AsyncIterable<{ server: string; id: string; size: number; mtimeMs: number }>
  readRecordEverywhere(name: string): Promise<RecordCopy[]>
  /** Rejects with VersionConflictError when the record is not at `expectVersion` (0: absent). */
  casRecord(server: string, name: string, expectVersion: number, value: Buffer): Promise<number>
  /** Space on the live servers, added up. */
  capacity(): Promise<{ totalBytes: number; freeBytes: number }>
}

/** The store refused a blob because every server that could take it is out of space. */
export function isStoreFull(err: unknown): boolean {
  return (err as { full?: unknown } | null)?.full === true
}

/** How many servers keep each metadata piece: more than the data, so metadata outlives it. */
export function metadataCopies(store: Pick<VolumeStore, 'members' | 'replicas'>): number {
  return Math.min(store.members().length, Math.max(3, store.replicas + 1))
}
