// Prometheus metrics of a storage server (prom-client), served on their own listener (`edfs server
// --metrics ADDR`, off by default, loopback unless told otherwise): requests by route, method and
// status with their latency, blob bytes in and out, what is stored and quarantined, the scrub.
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { pulledCounter, pulledGauge } from '../src/protocol/metrics-endpoint'
import { Scrubber } from './scrub'
import { TrafficStats } from './stats'
import { UserStores } from './user-stores'

export class ServerMetrics {
  readonly registry = new Registry()
  private readonly requests: Counter<'route' | 'method' | 'status'>
  private readonly latency: Histogram<'route' | 'method'>

  constructor(stores: UserStores, traffic: TrafficStats, scrubber: Scrubber) {
    collectDefaultMetrics({ register: this.registry, prefix: 'edfs_server_' })
    this.requests = new Counter({
      name: 'edfs_server_requests_total', help: 'Requests answered, by route, method and HTTP status',
      labelNames: ['route', 'method', 'status'], registers: [this.registry],
    })
    this.latency = new Histogram({
      name: 'edfs_server_request_duration_seconds', help: 'Time from a request\'s headers to the end of its answer',
      labelNames: ['route', 'method'], buckets: [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10], registers: [this.registry],
    })
    const gauge = (name: string, help: string, read: () => Promise<number> | number) => pulledGauge(this.registry, name, help, read)
    const sumStores = async (pick: (s: Awaited<ReturnType<UserStores['of']>>) => number) => {
      let n = 0
      for (const user of await stores.users()) n += pick(await stores.of(user))
      return n
    }
    gauge('edfs_server_blobs_stored', 'Blobs stored, all users', () => sumStores((s) => s.blobs.blobCount))
    gauge('edfs_server_bytes_stored', 'Bytes of blobs stored, all users', () => sumStores((s) => s.blobs.bytesStored))
    gauge('edfs_server_blobs_quarantined', 'Copies that failed their hash and were moved aside, all users', () => stores.quarantined())
    gauge('edfs_server_scrub_last_pass_timestamp_seconds', 'When the background scrub last finished a full pass (0: never)',
      () => (scrubber.status('').lastBackgroundPassFinishedAt ?? 0) / 1000)
    const counter = (name: string, help: string, read: () => number) => pulledCounter(this.registry, name, help, read)
    counter('edfs_server_blob_bytes_received_total', 'Blob bytes received by PUT, all users', () => traffic.total().bytesReceived)
    counter('edfs_server_blob_bytes_sent_total', 'Blob bytes sent by GET, all users', () => traffic.total().bytesServed)
  }

  /** Counts one answered request (called when its answer is finished). */
  observe(route: string, method: string, status: number, seconds: number): void {
    this.requests.inc({ route, method, status: String(status) })
    this.latency.observe({ route, method }, seconds)
  }
}
