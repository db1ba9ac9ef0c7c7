// One S3 bucket (and key prefix) as a member: blobs, records with compare-and-swap by conditional
// PUT, a stable member id, health and listing. The store sees sealed blobs under opaque ids and
// sealed records under opaque names, as a server does. docs/s3.md has the layout and the rules.
//
// Keys under PREFIX: `member-id` (this member's id, made at first contact), `blobs/ID`,
// `records/NAME` (version and writer in x-amz-meta-edfs-*; the body is RECORD_MAGIC, the writer tag,
// then the sealed record), `quarantine/ID` (copies that failed
// their hash, moved aside by verify), `cas-check` (where conditional writes are tried at first contact).
import { createHash, randomBytes } from 'node:crypto'
import http from 'node:http'
import https from 'node:https'
import type { IncomingMessage } from 'node:http'
import type * as Sdk from '@aws-sdk/client-s3'
import { BlobListBody, type BufferPool, ByteRange, HealthBody, MAX_LIST_LIMIT, ServerError, StatsBody, VerifyBody, VersionConflictError, isBlobId, mapLimit, rangeHeader } from '../protocol'
import type { MemberClient } from './member-client'
import type { S3Location } from './member-url'
import { retry } from './retry'
import { DEFAULT_TIMEOUT_MS } from './server-client'
import { BodyCollector, TimeoutError, UnreachableError } from './server-transport'

export interface S3MemberOptions extends S3Location {
  url: string
  timeoutMs?: number
  ca?: string | Buffer
  maxSockets?: number
}

/** What `df` shows for an S3 member without capacity=: object stores report no size (JuiceFS does the same). */
export const DEFAULT_S3_CAPACITY = 1024 ** 5

/** Requests in flight per member for have/verify/stats (each is one small request). */
const FAN_OUT = 16
/** A store that asks us to slow down (503 SlowDown, 429) or fails once (500) is asked again, backing off. */
const BUSY_RETRY = { attempts: 5, baseMs: 100, maxMs: 3000 }

type Client = InstanceType<typeof Sdk.S3Client>
let sdk: Promise<typeof Sdk> | null = null

/** The SDK loads on first use: commands that never touch S3 do not pay its start-up. */
function loadSdk(): Promise<typeof Sdk> {
  // The pinned SDK runs on Node 20; its warning is about versions after it.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
  sdk ??= import('@aws-sdk/client-s3')
  return sdk
}

/**
 * A record's body starts with this and the writer's 8-byte tag. The ETag is the MD5 of the body, and
 * If-Match compares ETags: without a tag of its own in the body, a write of the same bytes as the
 * version before would leave the ETag unchanged, and a stale If-Match would pass (ABA).
 */
const RECORD_MAGIC = Buffer.from('edfsrec1')
const WRITER_BYTES = 8

interface RecordTag {
  version: number
  etag: string
  writer: string | undefined
}

export class S3MemberClient implements MemberClient {
  readonly kind = 's3' as const
  readonly url: string
  private readonly timeoutMs: number
  private readonly agent: http.Agent
  private client: Promise<Client> | null = null
  /** ETag of each record as last seen, so a CAS needs no read first. */
  private readonly tags = new Map<string, RecordTag>()
  /** Ceph RGW 16 compares If-Match with the ETag without its quotes (found out at the first CAS that needs it). */
  private unquotedIfMatch = false

  constructor(private readonly opts: S3MemberOptions) {
    this.url = opts.url
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
    const agentOptions = { keepAlive: true, maxSockets: opts.maxSockets ?? 32, ca: opts.ca }
    this.agent = opts.endpoint?.startsWith('http:') ? new http.Agent(agentOptions) : new https.Agent(agentOptions)
  }

  close(): void {
    void this.client?.then((c) => c.destroy(), () => undefined)
    this.agent.destroy()
  }

  async health(): Promise<HealthBody> {
    return this.healthWithin(undefined)
  }

  probe(timeoutMs: number): Promise<HealthBody> {
    return this.healthWithin(timeoutMs)
  }

  async login(): Promise<void> {
    // Every request is signed with the store's credentials; health already proved they work.
  }

  async changePassword(): Promise<void> {
    // An S3 member has no edfs login: its credentials are the store's, changed there.
  }

  async stats(): Promise<StatsBody> {
    let bytesStored = 0
    let blobCount = 0
    for (let after: string | undefined, page = 0; page < 1_000_000; page++) {
      const list = await this.listBlobs(after, MAX_LIST_LIMIT)
      for (const b of list.blobs) {
        bytesStored += b.size
        blobCount++
      }
      if (!list.next) break
      after = list.next
    }
    return { bytesStored, blobCount, bytesServed: 0, bytesReceived: 0, requestsServed: 0 }
  }

  async putBlob(id: string, data: Buffer): Promise<'created' | 'exists'> {
    const s = await loadSdk()
    await this.send(new s.PutObjectCommand({ Bucket: this.opts.bucket, Key: this.blobKey(id), Body: data, ContentLength: data.length }))
    return 'created' // content-addressed: a second PUT of the same id stores the same bytes
  }

  async getBlob(id: string, range?: ByteRange, into?: BufferPool): Promise<Buffer | null> {
    if (range && range.end <= range.start) return Buffer.alloc(0)
    try {
      return (await this.getObject(this.blobKey(id), range, undefined, into))?.body ?? null
    } catch (err) {
      if (err instanceof ServerError && err.status === 416) return Buffer.alloc(0) // a range past the end
      throw err
    }
  }

  async deleteBlob(id: string): Promise<boolean> {
    if (!(await this.head(this.blobKey(id)))) return false
    const s = await loadSdk()
    await this.send(new s.DeleteObjectCommand({ Bucket: this.opts.bucket, Key: this.blobKey(id) }))
    return true
  }

  async have(ids: string[]): Promise<string[]> {
    const found = await mapLimit(ids, FAN_OUT, async (id) => ((await this.head(this.blobKey(id))) ? id : null))
    return found.filter((id): id is string => id !== null)
  }

  async verifyBlobs(ids: string[]): Promise<VerifyBody> {
    const out: VerifyBody = { ok: [], bad: [], missing: [] }
    await mapLimit(ids, 4, async (id) => {
      const data = await this.getBlob(id)
      if (!data) return out.missing.push(id)
      if (createHash('sha256').update(data).digest('hex') === id) return out.ok.push(id)
      await this.quarantine(id)
      return out.bad.push(id)
    })
    return out
  }

  async listBlobs(after?: string, limit = MAX_LIST_LIMIT): Promise<BlobListBody> {
    const s = await loadSdk()
    const prefix = this.blobKey('')
    const page = await this.send(new s.ListObjectsV2Command({
      Bucket: this.opts.bucket, Prefix: prefix, MaxKeys: Math.min(limit, 1000), StartAfter: after ? prefix + after : undefined,
    }))
    const objects = page.Contents ?? []
    const blobs = objects
      .map((o) => ({ id: o.Key!.slice(prefix.length), size: o.Size ?? 0, mtimeMs: o.LastModified?.getTime() ?? 0 }))
      .filter((b) => isBlobId(b.id))
    const last = objects.at(-1)?.Key?.slice(prefix.length)
    return page.IsTruncated && last ? { blobs, next: last } : { blobs }
  }

  async getRecord(name: string): Promise<{ version: number; value: Buffer } | null> {
    const got = await this.getObject(this.recordKey(name))
    if (!got) {
      this.tags.delete(name)
      return null
    }
    const tag = tagOf(got.output)
    const header = RECORD_MAGIC.length + WRITER_BYTES
    if (got.body.length < header || !got.body.subarray(0, RECORD_MAGIC.length).equals(RECORD_MAGIC)) {
      throw new ServerError(500, 'internal', `${this.recordKey(name)} is not an edfs record (no ${RECORD_MAGIC.toString()} header)`, this.url)
    }
    this.tags.set(name, tag)
    return { version: tag.version, value: got.body.subarray(header) }
  }

  /**
   * CAS by conditional PUT: If-None-Match: * creates, If-Match: ETAG replaces the version last seen.
   * Every write is settled by reading the record back, because a store's answer alone is not
   * enough: Ceph RGW answers some losers of a race with 500, and a store whose check is not atomic
   * would answer 200 to two writers. The record names its writer: ours is success, another's is a
   * conflict, and after a failed request an unchanged record is the original error.
   */
  async putRecord(name: string, expectVersion: number, value: Buffer): Promise<number> {
    const s = await loadSdk()
    const key = this.recordKey(name)
    let seen: RecordTag | null = null
    if (expectVersion > 0) {
      seen = this.tags.get(name) ?? null
      if (seen?.version !== expectVersion) seen = await this.headRecord(key)
      if (seen?.version !== expectVersion) throw this.conflict(name, seen?.version ?? 0)
    }
    const writerTag = randomBytes(WRITER_BYTES)
    const writer = writerTag.toString('hex')
    const body = Buffer.concat([RECORD_MAGIC, writerTag, value])
    const version = expectVersion + 1
    for (;;) {
      const quoted = !this.unquotedIfMatch
      const condition = seen ? { IfMatch: quoted ? seen.etag : seen.etag.replace(/"/g, '') } : { IfNoneMatch: '*' }
      try {
        await this.send(new s.PutObjectCommand({
          Bucket: this.opts.bucket, Key: key, Body: body, ContentLength: body.length,
          Metadata: { 'edfs-version': String(version), 'edfs-writer': writer }, ...condition,
        }), false)
        // Only the record read back says who won (see above).
        const now = await this.headRecord(key)
        if (now?.writer !== writer) throw this.conflict(name, now?.version ?? 0)
        this.tags.set(name, now)
        return version
      } catch (err) {
        if (!(err instanceof ServerError) || ![409, 412, 500, 503].includes(err.status)) throw err
        const now = await this.headRecord(key)
        if (now?.writer === writer) {
          this.tags.set(name, now)
          return version
        }
        if ((now?.version ?? 0) !== expectVersion) throw this.conflict(name, now?.version ?? 0)
        if (err.status === 412 && seen && now?.etag === seen.etag && quoted) {
          this.unquotedIfMatch = true // refused although the ETag matches: the store wants it unquoted
          continue
        }
        throw err
      }
    }
  }

  private async healthWithin(timeoutMs: number | undefined): Promise<HealthBody> {
    const id = await this.memberId(timeoutMs) // asked every time: a probe must reach the store
    const capacity = this.opts.capacityBytes ?? DEFAULT_S3_CAPACITY
    return { id, disk: id, version: 's3', totalBytes: capacity, freeBytes: capacity, capacityConfigured: true }
  }

  /**
   * This member's id, from PREFIX/member-id; made at first contact, once the store's conditional
   * writes are checked. Read at every health call: that is the cheap authenticated request that proves
   * the bucket is there and the credentials work.
   */
  private async memberId(timeoutMs: number | undefined): Promise<string> {
    const s = await loadSdk()
    const key = `${this.opts.prefix}member-id`
    const signal = timeoutMs ? AbortSignal.timeout(timeoutMs) : undefined
    const got = await this.getObject(key, undefined, signal)
    if (got) {
      const id = got.body.toString('utf8').trim()
      if (!/^[0-9a-f]{32}$/.test(id)) throw new ServerError(500, 'internal', `${key} does not hold a member id`, this.url)
      return id
    }
    await this.checkConditionalWrites(signal)
    const id = randomBytes(16).toString('hex')
    const body = Buffer.from(`${id}\n`)
    try {
      await this.send(new s.PutObjectCommand({ Bucket: this.opts.bucket, Key: key, Body: body, ContentLength: body.length, IfNoneMatch: '*' }), false, signal)
    } catch (err) {
      if (err instanceof ServerError && (err.status === 412 || err.status === 409)) return this.memberId(timeoutMs) // another client made it first
      throw err
    }
    return id
  }

  /**
   * Compare-and-swap is what keeps two writers from both committing. A store that ignores the
   * conditions would take a second create and a stale replace of PREFIX/cas-check: it is refused
   * (before this member has an id, so at every contact), never used without CAS.
   */
  private async checkConditionalWrites(signal: AbortSignal | undefined): Promise<void> {
    const s = await loadSdk()
    const body = Buffer.from('edfs checks conditional writes here\n')
    const put = (condition: { IfNoneMatch: string } | { IfMatch: string }) =>
      this.send(new s.PutObjectCommand({ Bucket: this.opts.bucket, Key: `${this.opts.prefix}cas-check`, Body: body, ContentLength: body.length, ...condition }), false, signal)
        .then(() => true, (err) => {
          if (err instanceof ServerError && (err.status === 412 || err.status === 409)) return false
          throw err
        })
    await put({ IfNoneMatch: '*' }) // made now, or there from an earlier check
    const checks: [string, { IfNoneMatch: string } | { IfMatch: string }][] = [['If-None-Match', { IfNoneMatch: '*' }], ['If-Match', { IfMatch: '"00000000000000000000000000000000"' }]]
    for (const [header, condition] of checks) {
      if (await put(condition)) {
        throw new ServerError(501, 'unknown', `the store ignores conditional writes (${header}): edfs needs them for compare-and-swap of its head and lease, so this bucket cannot be a member`, this.url)
      }
    }
  }

  /** An object's bytes (in memory from `into`, if given) and headers, or null when the key is absent (a missing bucket is an error). */
  private async getObject(key: string, range?: ByteRange, signal?: AbortSignal, into?: BufferPool): Promise<{ body: Buffer; output: Sdk.GetObjectCommandOutput } | null> {
    const s = await loadSdk()
    try {
      const output = await this.send(new s.GetObjectCommand({ Bucket: this.opts.bucket, Key: key, Range: range ? rangeHeader(range) : undefined }), true, signal)
      return { body: await this.readBody(output.Body as IncomingMessage, output.ContentLength, into, range ? range.end - range.start : undefined), output }
    } catch (err) {
      if (err instanceof ServerError && err.status === 404 && err.body?.message !== 'NoSuchBucket') return null
      throw err
    }
  }

  private async head(key: string): Promise<Sdk.HeadObjectCommandOutput | null> {
    const s = await loadSdk()
    try {
      return await this.send(new s.HeadObjectCommand({ Bucket: this.opts.bucket, Key: key }))
    } catch (err) {
      if (err instanceof ServerError && err.status === 404) return null
      throw err
    }
  }

  private async headRecord(key: string): Promise<RecordTag | null> {
    const h = await this.head(key)
    return h ? tagOf(h) : null
  }

  private async quarantine(id: string): Promise<void> {
    const s = await loadSdk()
    const { bucket, prefix } = this.opts
    await this.send(new s.CopyObjectCommand({ Bucket: bucket, Key: `${prefix}quarantine/${id}`, CopySource: `${bucket}/${encodeURI(this.blobKey(id))}` }))
    await this.send(new s.DeleteObjectCommand({ Bucket: bucket, Key: this.blobKey(id) }))
  }

  private conflict(name: string, version: number): VersionConflictError {
    return new VersionConflictError(`record ${name} is at version ${version}`, this.url, version)
  }

  private blobKey(id: string): string {
    return `${this.opts.prefix}blobs/${id}`
  }

  private recordKey(name: string): string {
    return `${this.opts.prefix}records/${name}`
  }

  private sdkClient(): Promise<Client> {
    this.client ??= loadSdk().then((s) => new s.S3Client({
      endpoint: this.opts.endpoint,
      region: this.opts.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
      forcePathStyle: this.opts.pathStyle,
      profile: this.opts.profile,
      // Retries are ours (BUSY_RETRY; the pool tries other members); checksums are the AEAD's and the blob id's.
      maxAttempts: 1,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: { connectionTimeout: this.timeoutMs, requestTimeout: this.timeoutMs, httpAgent: this.agent, httpsAgent: this.agent as https.Agent },
    }))
    return this.client
  }

  /** One request, its failure as the pool's errors; a busy store is asked again (idempotent requests only). */
  private async send<I extends object, O>(command: Sdk.$Command<I, O, Sdk.S3ClientResolvedConfig>, idempotent = true, signal?: AbortSignal): Promise<O> {
    const client = await this.sdkClient()
    const once = () => client.send(command as never, { abortSignal: signal }).catch((err: unknown) => {
      throw this.memberError(err)
    }) as Promise<O>
    if (!idempotent) return once()
    return retry(once, { ...BUSY_RETRY, retryable: (err) => err instanceof ServerError && [429, 500, 503].includes(err.status) })
  }

  private memberError(err: unknown): Error {
    const e = err as Error & { $metadata?: { httpStatusCode?: number }; code?: string; Code?: string }
    const status = e?.$metadata?.httpStatusCode
    if (e?.name === 'TimeoutError' || e?.name === 'AbortError' || e?.code === 'ETIMEDOUT') return new TimeoutError(this.url, this.timeoutMs)
    if (!status) return typeof e?.code === 'string' ? new UnreachableError(this.url, e) : e
    const what = e.name && e.name !== 'Unknown' ? e.name : `HTTP ${status}`
    if (status === 403 || status === 401) {
      return new ServerError(401, 'unauthorized', `the store refused the credentials (${what}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, ~/.aws/credentials or profile=`, this.url)
    }
    if (status === 404 && e.name === 'NoSuchBucket') {
      const message = `bucket ${this.opts.bucket} does not exist${this.opts.endpoint ? ` at ${this.opts.endpoint}` : ''}: create it first`
      return new ServerError(404, 'not-found', message, this.url, { error: 'not-found', message: 'NoSuchBucket' })
    }
    const code = status === 404 ? 'not-found' : status === 503 || status === 429 ? 'unavailable' : status >= 500 ? 'internal' : 'unknown'
    return new ServerError(status, code, what, this.url)
  }

  /** The answer's bytes, read as the transport reads a server's (server-transport.ts, BodyCollector): a range's answer at most its length. */
  private readBody(body: IncomingMessage, length: number | undefined, into?: BufferPool, maxBody?: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const answer = new BodyCollector(200, length === undefined ? {} : { 'content-length': String(length) }, 'GET', { into, maxBody })
      const done = () => {
        const got = answer.finish(this.url)
        if (got instanceof ServerError) reject(got)
        else resolve(got.body)
      }
      // Refused as soon as it is too long: nothing more is read.
      if (answer.tooLong) return (body.destroy(), done())
      body.on('data', (d: Buffer) => {
        answer.add(d)
        if (answer.tooLong) {
          body.destroy()
          done()
        }
      })
      body.on('error', (err) => reject(this.memberError(err)))
      body.on('end', done)
    })
  }
}

function tagOf(o: { ETag?: string; Metadata?: Record<string, string> }): RecordTag {
  const version = Number(o.Metadata?.['edfs-version'])
  return { version: Number.isSafeInteger(version) && version > 0 ? version : 1, etag: o.ETag ?? '', writer: o.Metadata?.['edfs-writer'] }
}
