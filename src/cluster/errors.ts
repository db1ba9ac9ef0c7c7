// Errors the cluster layer throws. Every one names the blob or record, and each server tried with
// the reason it gave, so a user (or fsck) can see what happened without a debugger.
import { ServerError, isBlobId } from '../protocol'
import { TimeoutError, UnreachableError } from './server-transport'

export { ServerError, TimeoutError, UnreachableError }

export interface Attempt {
  /** Server id when known, otherwise its URL. */
  server: string
  reason: string
}

const listAttempts = (tried: Attempt[]): string =>
  tried.length === 0 ? 'no server could be asked' : tried.map((t) => `${t.server}: ${t.reason}`).join('; ')

/** No replica of a blob could be read intact. Never thrown together with bytes: no wrong data, ever. */
export class ChunkUnavailableError extends Error {
  /** getMany: every id that could not be read (the first is `id`). */
  missing: string[]
  constructor(readonly id: string, readonly tried: Attempt[]) {
    super(`chunk ${id} is unavailable: ${listAttempts(tried)}`)
    this.name = 'ChunkUnavailableError'
    this.missing = [id]
  }
}

/** Fewer than W (write quorum) copies of a blob could be stored. */
export class WriteFailedError extends Error {
  constructor(
    readonly id: string, readonly stored: string[], readonly needed: number, readonly tried: Attempt[],
    /** Every server that could have taken it answered "out of space": the cluster is full (ENOSPC, not EIO). */
    readonly full = false,
  ) {
    super(`storing chunk ${id} failed: ${stored.length} of the ${needed} required copies stored (${listAttempts(tried)})${full ? ': the servers are out of space' : ''}`)
    this.name = 'WriteFailedError'
  }
}

/** The caller handed put() bytes that do not hash to the given id. Nothing was sent. */
export class BlobIdMismatchError extends Error {
  constructor(readonly id: string) {
    super(`the servers refused blob ${id}: its bytes do not hash to its id (a blob id must be the SHA-256 of its bytes)`)
    this.name = 'BlobIdMismatchError'
  }
}

/** Cluster.connect could not reach any server, or the servers refused the credentials. */
export class ClusterConnectError extends Error {
  constructor(message: string, readonly failures: { url: string; reason: string }[]) {
    super(`${message}: ${failures.map((f) => `${f.url}: ${f.reason}`).join('; ')}`)
    this.name = 'ClusterConnectError'
  }
}

/** Invalid options or arguments (bad URL, R out of range, unknown server name, malformed id). */
export class ClusterConfigError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ClusterConfigError'
  }
}

/** A short human reason for an error from one server. */
export function reasonOf(err: unknown): string {
  if (err instanceof TimeoutError) return `timeout after ${err.timeoutMs} ms`
  if (err instanceof UnreachableError) return `unreachable (${(err.cause as NodeJS.ErrnoException)?.code ?? err.cause?.message ?? 'error'})`
  if (err instanceof ServerError) return `${err.status} ${err.code}: ${err.body?.message ?? err.message.replace(`${err.server}: `, '')}`
  return (err as Error)?.message ?? String(err)
}

/**
 * How a failure reflects on the server. 'down': the server is not answering (network error,
 * timeout, torn transfer, 503) — mark it down and probe it. 'full': it is out of disk space (507) —
 * healthy, but put the blob elsewhere. 'fault': it answered with a server-side error — lowers its
 * health, try elsewhere. 'caller': the request itself is at fault (4xx) — another server would say
 * the same.
 */
export type FailureKind = 'down' | 'full' | 'fault' | 'caller'

export function classify(err: unknown): FailureKind {
  if (err instanceof TimeoutError || err instanceof UnreachableError) return 'down'
  if (err instanceof ServerError) {
    if (err.status === 0 || (err.status >= 200 && err.status < 300)) return 'down'
    if (err.status === 507) return 'full'
    if (err.status >= 500 || err.status === 401 || err.status === 408 || err.status === 429) return 'fault'
    return 'caller'
  }
  // A socket error surfacing on the response stream (ECONNRESET, EPIPE...) is the network; anything
  // else is a local fault that says nothing about the server.
  return typeof (err as NodeJS.ErrnoException)?.code === 'string' ? 'down' : 'fault'
}

/** Throws ClusterConfigError unless `id` is a blob id (64 lowercase hex digits). */
export function checkBlobId(id: unknown): void {
  if (typeof id !== 'string' || !isBlobId(id)) throw new ClusterConfigError(`invalid blob id ${JSON.stringify(id)}: 64 lowercase hex digits expected`)
}
