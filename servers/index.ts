// The storage server as a library: startStorageServer() prepares the data directory, loads users,
// counts the stores and listens. The CLI (`edfs server`) is a thin wrapper around it.
import { LoginLimiter } from './rate-limit'
import { Authenticator } from './auth'
import { apiResources } from './api'
import { HttpFront } from './http-server'
import { Layout, prepareDataDir } from './layout'
import { TrafficStats } from './stats'
import { UserStores } from './user-stores'
import { UserTable } from './users'
import { diskId } from './disk-id'
import { SpaceGuard } from './space'
import { Scrubber } from './scrub'
import { serveMetrics } from '../src/protocol/metrics-endpoint'
import { Advertisement, advertise } from '../src/protocol/zeroconf'
import { ServerMetrics } from './metrics'
import { DEFAULT_MAX_BLOB_SIZE, DEFAULT_REQUEST_TIMEOUT_MS, DEFAULT_SCRUB_PERIOD_MS, DEFAULT_SESSION_TTL_MS } from './defaults'
import { rm, readdir } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

export { DataDirError, Layout } from './layout'
export * from './defaults'
export { addUser, readUsersSync, updateUsers, fromVerifier } from './users'

export interface StorageServerOptions {
  dataDir: string
  host?: string
  port?: number
  tls?: { cert: Buffer; key: Buffer }
  /** Default 128 MiB. */
  maxBlobSize?: number
  /** Longest silence inside a request body; default 60 s. */
  requestTimeoutMs?: number
  /** Default 12 h. */
  sessionTtlMs?: number
  /** One full background scrub pass per this many ms; 0: none. Default 7 days. */
  scrubPeriodMs?: number
  /** Serve Prometheus metrics on this address (GET /metrics); off by default. */
  metrics?: { host: string; port: number }
  /** Publish the server over mDNS (`_edfs._tcp`) under this instance name (default HOSTNAME:PORT). */
  advertise?: { name?: string }
  version?: string
  log?: (line: string) => void
}

export interface StorageServer {
  url: string
  id: string
  /** Where the metrics are served, when they are. */
  metricsUrl?: string
  /** The mDNS instance name it is published under (with `advertise`). */
  advertisedAs?: string
  /** Stops accepting, lets in-flight requests finish for `graceMs`, aborts the rest, clears tmp/. */
  close(graceMs?: number): Promise<void>
}


export async function startStorageServer(opts: StorageServerOptions): Promise<StorageServer> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`edfs server: ${line}\n`))
  const layout = new Layout(opts.dataDir)
  const identity = prepareDataDir(layout) // throws DataDirError with a clear message
  const users = new UserTable(layout.usersFile)
  const limiter = new LoginLimiter()
  const auth = new Authenticator(users, limiter, { secret: identity.secret, sessionTtlMs: opts.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS })
  const requestTimeoutMs = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
  const traffic = new TrafficStats()
  let front: HttpFront
  let url: string
  let metricsServer: { url: string; close(): Promise<void> } | undefined
  let advertisement: Advertisement | undefined
  let advertisedAs: string | undefined
  const stores = new UserStores(layout)
  const scrubber = new Scrubber(stores, layout.scrubStateFile, () => layout.tmpFile(), opts.scrubPeriodMs ?? DEFAULT_SCRUB_PERIOD_MS, log)
  try {
    await stores.scanAll()
    const space = new SpaceGuard(layout.root)
    const resources = apiResources({
      id: identity.id, disk: await diskId(layout.root, identity.id), version: opts.version ?? '0', space, auth, stores, scrubber, traffic,
      maxBlobSize: opts.maxBlobSize ?? DEFAULT_MAX_BLOB_SIZE, requestTimeoutMs,
    })
    const metrics = opts.metrics ? new ServerMetrics(stores, traffic, scrubber) : undefined
    front = new HttpFront(resources, auth, traffic, space, { host: opts.host ?? '127.0.0.1', port: opts.port ?? 7001, tls: opts.tls, requestTimeoutMs, log, metrics })
    url = await front.listen()
    if (metrics && opts.metrics) metricsServer = await serveMetrics(metrics.registry, opts.metrics.host, opts.metrics.port)
    await scrubber.start()
    if (opts.advertise) {
      const port = Number(new URL(url).port)
      advertisedAs = opts.advertise.name ?? `${os.hostname()}:${port}`
      advertisement = advertise({ name: advertisedAs, port, id: identity.id, tls: !!opts.tls, log })
    }
  } catch (err) {
    await advertisement?.stop()
    await scrubber.stop()
    await metricsServer?.close()
    auth.close()
    identity.lock.release()
    throw err
  }
  return {
    url,
    id: identity.id,
    metricsUrl: metricsServer?.url,
    advertisedAs,
    async close(graceMs = 3000) {
      try {
        await advertisement?.stop()
        await scrubber.stop()
        await metricsServer?.close()
        await front.close(graceMs)
      } finally {
        auth.close()
        for (const name of await readdir(layout.tmpDir).catch(() => [] as string[])) {
          await rm(path.join(layout.tmpDir, name), { recursive: true, force: true }).catch(() => undefined)
        }
        identity.lock.release()
      }
    },
  }
}
