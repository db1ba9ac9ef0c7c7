// The one HTTP route a metrics listener has (GET /metrics, Prometheus text), for the storage server
// and the mount daemon alike. Not in the protocol barrel: prom-client takes ~40 ms to load, which
// only the server and the daemon should pay, not every other command.
import { createServer } from 'node:http'
import { AddressInfo } from 'node:net'
import { Counter, Gauge, type Registry } from 'prom-client'

/** A gauge read from live state at scrape time. */
export function pulledGauge(registry: Registry, name: string, help: string, read: () => number | Promise<number>): Gauge {
  return new Gauge({ name, help, registers: [registry], async collect() { this.set(await read()) } })
}

/** A counter fed at scrape time from a running total kept elsewhere (it only ever grows). */
export function pulledCounter(registry: Registry, name: string, help: string, read: () => number): Counter {
  let last = 0
  return new Counter({ name, help, registers: [registry], collect() { const now = read(); this.inc(Math.max(0, now - last)); last = now } })
}

/** Serves GET /metrics of `registry` on host:port; resolves to the URL and a close function. */
export function serveMetrics(registry: Registry, host: string, port: number): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n')
      return
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
    )
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      const a = server.address() as AddressInfo
      const h = a.family === 'IPv6' ? `[${a.address}]` : a.address
      resolve({ url: `http://${h}:${a.port}/metrics`, close: () => new Promise<void>((r) => server.close(() => r())) })
    })
  })
}
