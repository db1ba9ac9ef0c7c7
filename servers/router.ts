// Maps method + path to a handler: unknown path -> 404 not-found, known path with another method
// -> 405 method-not-allowed (with Allow). Paths are matched raw (never decoded or normalized), so
// "../x" reaches the id check and is refused there.
import { IncomingMessage, ServerResponse } from 'node:http'
import { HttpError } from './errors'

export interface RequestContext {
  req: IncomingMessage
  res: ServerResponse
  /** Captured path parts (raw). */
  params: string[]
  query: URLSearchParams
  /** Remote address (rate limiting). */
  addr: string
  /** The authenticated user; '' on routes without authentication. */
  user: string
  /** The StoredKey the request's session logged in with (which of the user's passwords). */
  storedKey?: Buffer
}

export type Handler = (rc: RequestContext) => Promise<void>

export interface Resource {
  /** How metrics name the route (never the raw path: ids would make endless labels). */
  name: string
  pattern: RegExp
  /** Signed requests only. */
  auth: boolean
  /** Methods whose requests carry a body (and therefore x-edfs-content-sha256). */
  bodyMethods?: string[]
  /**
   * Uploads here leave the disk's reserve free (blobs). Elsewhere (records: the volume's head,
   * lease) they may use it, so a full disk still lets a client delete files and commit that.
   */
  keepsReserve?: boolean
  methods: Partial<Record<string, Handler>>
}

export interface Match {
  resource: Resource
  handler: Handler
  params: string[]
  query: URLSearchParams
}

export function match(resources: Resource[], method: string, url: string): Match {
  const q = url.indexOf('?')
  const pathname = q < 0 ? url : url.slice(0, q)
  const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1))
  for (const resource of resources) {
    const m = resource.pattern.exec(pathname)
    if (!m) continue
    const handler = resource.methods[method]
    if (!handler) {
      const allow = Object.keys(resource.methods).join(', ')
      throw new HttpError('method-not-allowed', `${method} is not allowed on ${pathname} (allowed: ${allow})`, {}, { allow })
    }
    return { resource, handler, params: m.slice(1), query }
  }
  throw new HttpError('not-found', `no such route: ${pathname}`)
}
