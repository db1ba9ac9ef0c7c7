// What the pool asks of one member, whatever it is: an edfs server (ServerClient) or an S3 bucket
// (S3MemberClient). Single attempts: each method throws ServerError (the member's error answer),
// TimeoutError or UnreachableError, which classify() sorts into down / full / fault / caller.
import type { BlobListBody, HealthBody, StatsBody, VerifyBody } from '../protocol'
import type { BufferPool, ByteRange } from '../protocol'
import { ServerClient, ServerClientOptions } from './server-client'
import { S3MemberClient } from './s3-client'
import { parseMemberUrl } from './member-url'

export interface MemberClient {
  /** The member's canonical URL (member-url.ts). */
  readonly url: string
  /** 'server' or 's3': what `edfs status` and `passwd` tell apart. */
  readonly kind: 'server' | 's3'
  /** Id, capacity and version; proves the member is there (and, for S3, that the credentials work). */
  health(): Promise<HealthBody>
  /** health() for a background probe: its connection never keeps the process alive. */
  probe(timeoutMs: number): Promise<HealthBody>
  /** Authenticates now (servers: a login; S3: nothing beyond health, requests are signed). */
  login(): Promise<void>
  stats(): Promise<StatsBody>
  /** Stores a blob whose id is the SHA-256 of `data`. */
  putBlob(id: string, data: Buffer): Promise<'created' | 'exists'>
  /**
   * The blob's bytes (or the range of them; a range past the end comes back shorter), or null when
   * absent; in memory from `into` where the member can (the caller gives it back when done).
   */
  getBlob(id: string, range?: ByteRange, into?: BufferPool): Promise<Buffer | null>
  /** True when the blob existed and was removed. */
  deleteBlob(id: string): Promise<boolean>
  /** Which of these ids the member holds. */
  have(ids: string[]): Promise<string[]>
  /** Hashes the member's copies of these ids; bad ones are moved aside (quarantined). */
  verifyBlobs(ids: string[]): Promise<VerifyBody>
  /** A page of the member's blobs in id order, after `after`. */
  listBlobs(after?: string, limit?: number): Promise<BlobListBody>
  getRecord(name: string): Promise<{ version: number; value: Buffer } | null>
  /**
   * Compare-and-swap: writes only if the stored version is `expectVersion` (0: absent); returns the
   * new version. A lost race throws VersionConflictError.
   */
  putRecord(name: string, expectVersion: number, value: Buffer): Promise<number>
  /** The member's login password for this user (S3 members have none: their credentials are the store's). */
  changePassword(newPassword: string, replace: boolean): Promise<void>
  close(): void
}

/** Where the member is and how long a call may be silent; user and password log in to edfs servers (S3 members take credentials from the environment). */
export type MemberClientOptions = ServerClientOptions

/** The client for a member URL: an edfs server for http(s)://, a bucket for s3://. */
export function memberClient(opts: MemberClientOptions): MemberClient {
  const where = parseMemberUrl(opts.url)
  if (where.kind === 's3') return new S3MemberClient({ ...where.s3, url: where.url, timeoutMs: opts.timeoutMs, ca: opts.ca, maxSockets: opts.maxSockets })
  return new ServerClient({ ...opts, url: where.url })
}
