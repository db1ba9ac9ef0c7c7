// The v1 routes (docs/protocol.md): health, login, blobs, records, stats.
import { createHash } from 'node:crypto'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import {
  BlobListBody, BufferPool, HEADERS, HealthBody, MAX_HAVE_IDS, MAX_LIST_LIMIT, MAX_VERIFY_IDS, StatsBody, VerifyBody, isBlobId, isRecordName, mapLimit, sha256Hex,
} from '../src/protocol'
import { Authenticator } from './auth'
import { receiveBody, receiveJson } from './body'
import { HttpError } from './errors'
import { MAX_RECORD_SIZE } from './record-store'
import { sendJson } from './respond'
import { RequestContext, Resource } from './router'
import { Scrubber } from './scrub'
import { SpaceGuard } from './space'
import { TrafficStats } from './stats'
import { UserStores } from './user-stores'

export interface ApiContext {
  id: string
  /** Which file system dataDir is on (see disk-id.ts). */
  disk: string
  version: string
  space: SpaceGuard
  auth: Authenticator
  stores: UserStores
  scrubber: Scrubber
  traffic: TrafficStats
  maxBlobSize: number
  requestTimeoutMs: number
}

const JSON_LIMIT = 1024 * 1024
const DEFAULT_LIST_LIMIT = 1000
/** Answers up to this size are read in one piece rather than streamed. */
const SMALL_READ = 8 * 1024 * 1024
/** Memory of answers sent, kept for the next ones (fresh 4 MiB buffers cost a page fault per 4 KiB). */
const SPARE_READ_BYTES = 32 * 1024 * 1024

export function apiResources(ctx: ApiContext): Resource[] {
  const idle = ctx.requestTimeoutMs
  const readBuffers = new BufferPool(SMALL_READ, SPARE_READ_BYTES)

  const blobId = (rc: RequestContext): string => {
    const id = rc.params[0]!
    if (!isBlobId(id)) throw new HttpError('invalid-id', 'a blob id is 64 lowercase hex digits')
    return id
  }
  const recordName = (rc: RequestContext): string => {
    const name = rc.params[0]!
    if (!isRecordName(name)) throw new HttpError('invalid-id', 'a record name is 1-128 of a-z 0-9 . _ - (starting with a letter or digit)')
    return name
  }
  const bodySha = (rc: RequestContext): string => rc.req.headers[HEADERS.contentSha256] as string
  /** A body of {"ids": [...]}: at most `max` valid blob ids. */
  const idList = async (rc: RequestContext, max: number): Promise<string[]> => {
    const body = (await receiveJson(rc.req, JSON_LIMIT, idle, bodySha(rc))) as { ids?: unknown }
    const ids = body?.ids
    if (!Array.isArray(ids)) throw new HttpError('bad-request', 'the body must be {"ids": [...]}')
    if (ids.length > max) throw new HttpError('bad-request', `at most ${max} ids per query`)
    for (const id of ids) if (typeof id !== 'string' || !isBlobId(id)) throw new HttpError('invalid-id', 'a blob id is 64 lowercase hex digits')
    return ids as string[]
  }
  const declaredLength = (rc: RequestContext, limit: number): void => {
    const cl = rc.req.headers['content-length']
    if (cl !== undefined && Number(cl) > limit) throw new HttpError('payload-too-large', `the body is larger than ${limit} bytes`)
  }
  const expectVersion = (rc: RequestContext): number => {
    const v = rc.req.headers[HEADERS.expectVersion]
    if (typeof v !== 'string' || !/^\d{1,15}$/.test(v)) throw new HttpError('bad-request', `${HEADERS.expectVersion}: a version number (0: must not exist) is required`)
    return Number(v)
  }

  return [
    {
      name: 'health',
      pattern: /^\/v1\/health$/,
      auth: false,
      methods: {
        GET: async (rc) => {
          const body: HealthBody = { id: ctx.id, disk: ctx.disk, version: ctx.version, ...(await ctx.space.space()), quarantined: await ctx.stores.quarantined() }
          sendJson(rc.res, 200, body, { 'cache-control': 'no-store' })
        },
      },
    },
    {
      name: 'auth/challenge',
      pattern: /^\/v1\/auth\/challenge$/,
      auth: false,
      methods: { POST: async (rc) => sendJson(rc.res, 200, await ctx.auth.challenge(await receiveJson(rc.req, 4096, idle), rc.addr)) },
    },
    {
      name: 'auth/login',
      pattern: /^\/v1\/auth\/login$/,
      auth: false,
      methods: { POST: async (rc) => sendJson(rc.res, 200, await ctx.auth.login(await receiveJson(rc.req, 4096, idle), rc.addr)) },
    },
    {
      name: 'auth/password',
      pattern: /^\/v1\/auth\/password$/,
      auth: true,
      bodyMethods: ['POST'],
      methods: {
        POST: async (rc) => {
          await ctx.auth.changePassword(rc.user, await receiveJson(rc.req, 4096, idle, bodySha(rc)), rc.storedKey!)
          rc.res.writeHead(204).end()
        },
      },
    },
    {
      name: 'stats',
      pattern: /^\/v1\/stats$/,
      auth: true,
      methods: {
        GET: async (rc) => {
          const s = await ctx.stores.of(rc.user)
          const t = ctx.traffic.of(rc.user)
          const body: StatsBody = {
            bytesStored: s.blobs.bytesStored, blobCount: s.blobs.blobCount, ...t, quarantined: s.blobs.quarantined, scrub: ctx.scrubber.status(rc.user),
          }
          sendJson(rc.res, 200, body)
        },
      },
    },
    {
      name: 'scrub',
      pattern: /^\/v1\/scrub$/,
      auth: true,
      methods: {
        GET: async (rc) => sendJson(rc.res, 200, ctx.scrubber.status(rc.user)),
        POST: async (rc) => sendJson(rc.res, 202, await ctx.scrubber.scrubNow(rc.user)),
      },
    },
    {
      name: 'blobs/verify',
      pattern: /^\/v1\/blobs\/verify$/,
      auth: true,
      bodyMethods: ['POST'],
      methods: {
        POST: async (rc) => {
          const ids = await idList(rc, MAX_VERIFY_IDS)
          const s = await ctx.stores.of(rc.user)
          const body: VerifyBody = { ok: [], bad: [], missing: [] }
          // Two at a time: each is a whole read and hash, and the foreground must keep its share of the disk.
          const verdicts = await mapLimit(ids, 2, (id) => s.blobs.verify(id))
          ids.forEach((id, i) => body[verdicts[i]!].push(id))
          sendJson(rc.res, 200, body)
        },
      },
    },
    {
      name: 'blobs/have',
      pattern: /^\/v1\/blobs\/have$/,
      auth: true,
      bodyMethods: ['POST'],
      methods: {
        POST: async (rc) => {
          const ids = await idList(rc, MAX_HAVE_IDS)
          const s = await ctx.stores.of(rc.user)
          sendJson(rc.res, 200, { have: await s.blobs.have(ids) })
        },
      },
    },
    {
      name: 'blobs',
      pattern: /^\/v1\/blobs$/,
      auth: true,
      methods: {
        GET: async (rc) => {
          const after = rc.query.get('after') ?? undefined
          if (after !== undefined && !isBlobId(after)) throw new HttpError('invalid-id', 'after: a blob id is 64 lowercase hex digits')
          const limitText = rc.query.get('limit')
          const limit = limitText === null ? DEFAULT_LIST_LIMIT : Number(limitText)
          if (!/^\d+$/.test(limitText ?? '1') || limit < 1 || limit > MAX_LIST_LIMIT) {
            throw new HttpError('bad-request', `limit: 1 to ${MAX_LIST_LIMIT}`)
          }
          const s = await ctx.stores.of(rc.user)
          const body: BlobListBody = await s.blobs.list(after, limit)
          sendJson(rc.res, 200, body)
        },
      },
    },
    {
      name: 'blob',
      pattern: /^\/v1\/blobs\/(.+)$/,
      auth: true,
      bodyMethods: ['PUT'],
      keepsReserve: true,
      methods: {
        PUT: async (rc) => {
          const id = blobId(rc)
          if (bodySha(rc) !== id) throw new HttpError('hash-mismatch', `${HEADERS.contentSha256} must equal the blob id`)
          declaredLength(rc, ctx.maxBlobSize)
          const s = await ctx.stores.of(rc.user)
          const t = ctx.traffic.of(rc.user)
          const result = await s.blobs.put(id, rc.req, { limit: ctx.maxBlobSize, idleMs: idle, onData: (n) => (t.bytesReceived += n) })
          sendJson(rc.res, result === 'created' ? 201 : 200, { id })
        },
        GET: async (rc) => getBlob(rc, blobId(rc), false),
        HEAD: async (rc) => getBlob(rc, blobId(rc), true),
        DELETE: async (rc) => {
          const id = blobId(rc)
          const s = await ctx.stores.of(rc.user)
          if (!(await s.blobs.delete(id))) throw new HttpError('not-found', 'no such blob')
          rc.res.writeHead(204).end()
        },
      },
    },
    {
      name: 'record',
      pattern: /^\/v1\/records\/(.+)$/,
      auth: true,
      bodyMethods: ['PUT'],
      methods: {
        GET: async (rc) => {
          const name = recordName(rc)
          const r = await (await ctx.stores.of(rc.user)).records.get(name)
          if (!r) throw new HttpError('not-found', 'no such record')
          rc.res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': r.value.length, [HEADERS.version]: String(r.version) })
          rc.res.end(r.value)
        },
        PUT: async (rc) => {
          const name = recordName(rc)
          const expect = expectVersion(rc)
          declaredLength(rc, MAX_RECORD_SIZE)
          const body = await receiveBody(rc.req, { limit: MAX_RECORD_SIZE, idleMs: idle })
          if (body.sha256 !== bodySha(rc)) throw new HttpError('hash-mismatch', `the body does not match ${HEADERS.contentSha256}`)
          const version = await (await ctx.stores.of(rc.user)).records.put(name, expect, body.body)
          sendJson(rc.res, 200, { version }, { [HEADERS.version]: String(version) })
        },
        DELETE: async (rc) => {
          const name = recordName(rc)
          const expect = expectVersion(rc)
          if (!(await (await ctx.stores.of(rc.user)).records.delete(name, expect))) throw new HttpError('not-found', 'no such record')
          rc.res.writeHead(204).end()
        },
      },
    },
  ]

  /**
   * Serves a blob or a range of it. A whole blob is hashed on the way out: a copy that fails its
   * id is quarantined and answered as absent (the client asks the next server), never served as
   * good. A range cannot be checked without reading it all; the client's AEAD check covers it.
   */
  async function getBlob(rc: RequestContext, id: string, head: boolean): Promise<void> {
    const s = await ctx.stores.of(rc.user)
    const b = await s.blobs.open(id)
    if (!b) throw new HttpError('not-found', 'no such blob')
    let handedOver = false
    try {
      const range = parseRange(rc.req.headers.range, b.size)
      const start = range?.start ?? 0
      const end = range?.end ?? b.size
      const headers: Record<string, string | number> = {
        'content-type': 'application/octet-stream', 'content-length': end - start, 'accept-ranges': 'bytes', etag: `"${id}"`,
      }
      if (range) headers['content-range'] = `bytes ${start}-${end - 1}/${b.size}`
      if (head || end === start) {
        rc.res.writeHead(range ? 206 : 200, headers).end()
        return
      }
      const t = ctx.traffic.of(rc.user)
      if (end - start <= SMALL_READ) {
        // Typical chunks (4 MiB): one read, one write. Memory is bounded by the connections in use.
        const buf = readBuffers.take(end - start)
        for (let off = 0; off < buf.length; ) {
          const { bytesRead } = await b.fh.read(buf, off, buf.length - off, start + off)
          if (bytesRead === 0) throw new Error(`blob ${id} shrank while being read`)
          off += bytesRead
        }
        if (!range && sha256Hex(buf) !== id) {
          await s.blobs.verify(id)
          throw new HttpError('not-found', 'this copy failed its hash check and was quarantined')
        }
        t.bytesServed += buf.length
        // Reused only once the answer is wholly handed to the kernel ('finish'); an answer cut short leaves its memory to the collector.
        rc.res.once('finish', () => readBuffers.give(buf))
        rc.res.writeHead(range ? 206 : 200, headers).end(buf)
        return
      }
      rc.res.writeHead(range ? 206 : 200, headers)
      const stream = b.fh.createReadStream({ start, end: end - 1, highWaterMark: 1024 * 1024 })
      handedOver = true // the stream closes the handle
      stream.on('data', (chunk: string | Buffer) => {
        t.bytesServed += chunk.length
      })
      // A failed hash quarantines the copy and then tears the answer down before its last piece, so
      // the client cannot take it for whole. Any other failure: the client went away mid-answer.
      const sent = range ? pipeline(stream, rc.res) : pipeline(stream, holdLastUntilVerified(id, () => s.blobs.verify(id)), rc.res)
      await sent.catch(() => undefined)
    } finally {
      if (!handedOver) await b.fh.close()
    }
  }
}

/** Passes a blob through, hashing it, and holds its last piece back until the hash matches the id. */
function holdLastUntilVerified(id: string, onBad: () => Promise<unknown>): Transform {
  const hash = createHash('sha256')
  let held: Buffer | null = null
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk)
      const out = held
      held = chunk
      done(null, out ?? undefined)
    },
    flush(done) {
      if (hash.digest('hex') === id) return done(null, held ?? undefined)
      const fail = () => done(new Error(`blob ${id} failed its hash check`))
      onBad().then(fail, fail)
    },
  })
}

/** A single byte range (`bytes=a-b`, `bytes=a-`, `bytes=-n`) as [start, end); null without a Range header. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | null {
  if (header === undefined) return null
  const unsatisfiable = () =>
    new HttpError('range-not-satisfiable', `only one byte range within ${size} bytes is supported`, {}, { 'content-range': `bytes */${size}` })
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (!m || (m[1] === '' && m[2] === '')) throw unsatisfiable()
  let start: number
  let end: number
  if (m[1] === '') {
    const n = Number(m[2])
    if (n === 0) throw unsatisfiable()
    start = Math.max(0, size - n)
    end = size
  } else {
    start = Number(m[1])
    end = m[2] === '' ? size : Math.min(Number(m[2]) + 1, size)
  }
  if (start >= size || end <= start) throw unsatisfiable()
  return { start, end }
}
