// Reads a request body with a byte limit, an idle timeout and a running SHA-256, either into memory
// or into a sink (a file), with back-pressure: the request is paused while the sink is behind.
// It never destroys the request, so the caller can still answer (413, 408, 400...).
import { createHash } from 'node:crypto'
import { IncomingMessage } from 'node:http'
import { ClientGoneError, HttpError } from './errors'

export interface ReceiveOptions {
  /** Most bytes accepted; one more is a 413. */
  limit: number
  /** Longest silence between two pieces of the body. */
  idleMs: number
  /** Where the bytes go; without a sink they are kept and returned. */
  sink?: (chunks: Buffer[]) => Promise<void>
  /** Called with the length of every piece received (traffic counters). */
  onData?: (bytes: number) => void
}

export interface Received {
  bytes: number
  sha256: string
  body: Buffer
}

const HIGH_WATER = 4 * 1024 * 1024

export function receiveBody(req: IncomingMessage, opts: ReceiveOptions): Promise<Received> {
  // A declared length over the limit is refused before a byte is read (not after an idle timeout).
  const declared = Number(req.headers['content-length'])
  if (declared > opts.limit) return Promise.reject(new HttpError('payload-too-large', `the body is larger than ${opts.limit} bytes`))
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256')
    const kept: Buffer[] = []
    let bytes = 0
    let done = false
    let ended = false
    let queue: Buffer[] = []
    let queued = 0
    let writing: Promise<void> | null = null
    let pausedByUs = false
    let timer: NodeJS.Timeout | undefined

    const arm = () => {
      clearTimeout(timer)
      timer = setTimeout(() => fail(new HttpError('request-timeout', `the request body stalled for more than ${opts.idleMs} ms`)), opts.idleMs)
    }
    const cleanup = () => {
      clearTimeout(timer)
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      req.off('close', onClose)
    }
    const fail = (err: Error) => {
      if (done) return
      done = true
      cleanup()
      req.pause()
      // Let a write in progress settle before the caller closes and removes the file.
      void (writing ?? Promise.resolve()).catch(() => undefined).then(() => reject(err))
    }
    const finish = () => {
      if (done) return
      done = true
      cleanup()
      resolve({ bytes, sha256: hash.digest('hex'), body: opts.sink ? Buffer.alloc(0) : Buffer.concat(kept, bytes) })
    }
    const pump = () => {
      if (writing || done || !opts.sink) return
      if (queue.length === 0) {
        if (ended) finish()
        return
      }
      const batch = queue
      queue = []
      queued = 0
      writing = opts.sink(batch).then(
        () => {
          writing = null
          if (done) return
          if (pausedByUs && queued < HIGH_WATER) {
            pausedByUs = false
            req.resume()
          }
          pump()
        },
        (err: Error) => {
          writing = null
          fail(err)
        },
      )
    }
    const onData = (chunk: Buffer) => {
      if (done) return
      bytes += chunk.length
      opts.onData?.(chunk.length)
      if (bytes > opts.limit) return fail(new HttpError('payload-too-large', `the body is larger than ${opts.limit} bytes`))
      hash.update(chunk)
      arm()
      if (!opts.sink) {
        kept.push(chunk)
        return
      }
      queue.push(chunk)
      queued += chunk.length
      if (queued >= HIGH_WATER && !pausedByUs) {
        pausedByUs = true
        req.pause()
      }
      pump()
    }
    const onEnd = () => {
      ended = true
      clearTimeout(timer)
      if (!opts.sink) finish()
      else pump()
    }
    const onError = (err: Error) => fail(err)
    const onClose = () => {
      if (!ended) fail(new ClientGoneError())
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
    req.on('close', onClose)
    arm()
  })
}

/** Reads a small JSON body (already authenticated callers pass the expected hash). */
export async function receiveJson(req: IncomingMessage, limit: number, idleMs: number, expectSha?: string): Promise<unknown> {
  const r = await receiveBody(req, { limit, idleMs })
  if (expectSha !== undefined && r.sha256 !== expectSha) throw new HttpError('hash-mismatch', 'the body does not match x-edfs-content-sha256')
  try {
    return JSON.parse(r.body.toString('utf8'))
  } catch {
    throw new HttpError('bad-request', 'the body is not valid JSON')
  }
}
