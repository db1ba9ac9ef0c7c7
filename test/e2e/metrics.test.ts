// Prometheus metrics: a server with --metrics and a mount daemon with --metrics answer GET /metrics
// with Prometheus text whose numbers follow what was done; every sample line parses.
import t, { type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import http from 'node:http'
import { ServerClient } from '../../src/cluster/server-client'
import { TEST_USER, runEdfs, startServer, tmpDir } from '../helpers/servers'
import { daemonLog, withFuse, makeVolume, mountVolume, shell, waitFor } from './support'

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$/

function scrape(url: string): Promise<{ type: string; text: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let text = ''
      res.on('data', (d: Buffer) => (text += d.toString()))
      res.on('end', () => resolve({ type: String(res.headers['content-type']), text }))
    }).on('error', reject)
  })
}

/** Every sample line parses; returns name{labels} -> value. */
function parse(t: Test, text: string): Map<string, number> {
  const out = new Map<string, number>()
  const bad = text.split('\n').filter((l) => l && !l.startsWith('#') && !SAMPLE.test(l))
  t.same(bad, [], 'every sample line is Prometheus text')
  for (const l of text.split('\n')) {
    const m = SAMPLE.exec(l)
    if (m) out.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]))
  }
  return out
}

t.test('server metrics', async (t) => {
  const server = await startServer(t, { args: ['--metrics', '0'] })
  t.ok(await waitFor(5000, async () => /metrics on http/.test(server.stderr()), 50), 'the server says where its metrics are')
  const url = /metrics on (http:\/\/\S+)/.exec(server.stderr())![1]!
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/, 'on loopback by default')
  const c = new ServerClient({ url: server.url, user: TEST_USER.name, password: TEST_USER.password })
  t.teardown(() => c.close())
  let bytes = 0
  for (let i = 0; i < 5; i++) {
    const data = randomBytes(10_000 + i)
    bytes += data.length
    await c.putBlob(createHash('sha256').update(data).digest('hex'), data)
  }
  await c.getRecord('absent')
  const { type, text } = await scrape(url)
  t.match(type, /text\/plain; version=0\.0\.4/)
  const m = parse(t, text)
  t.equal(m.get('edfs_server_requests_total{route="blob",method="PUT",status="201"}'), 5, 'five PUTs answered 201')
  t.equal(m.get('edfs_server_requests_total{route="record",method="GET",status="404"}'), 1, 'one record GET answered 404')
  t.equal(m.get('edfs_server_blobs_stored'), 5)
  t.equal(m.get('edfs_server_bytes_stored'), bytes)
  t.equal(m.get('edfs_server_blob_bytes_received_total'), bytes)
  t.ok((m.get('edfs_server_request_duration_seconds_count{route="blob",method="PUT"}') ?? 0) >= 5, 'latencies are observed')
  t.ok(m.has('edfs_server_process_resident_memory_bytes'), 'and the process metrics')
  const bad = await runEdfs(['server', '--data', tmpDir(t), '--port', '0', '--metrics', 'nowhere'])
  t.equal(bad.code, 1)
  t.match(bad.stderr, /--metrics: not PORT or HOST:PORT: "nowhere"/)
})

withFuse(() => {
  t.test('mount daemon metrics', async (t) => {
    const vol = await makeVolume(t, { chunkSize: '1MiB' })
    const m = await mountVolume(t, vol, { metrics: '0' })
    t.ok(await waitFor(10_000, async () => /metrics on http/.test(await daemonLog(vol, m.mnt, 50)), 100), 'the daemon logs its metrics address')
    const url = /metrics on (http:\/\/\S+)/.exec(await daemonLog(vol, m.mnt, 50))![1]!
    t.equal((await shell(`head -c 3000000 /dev/urandom > ${m.mnt}/f && sync ${m.mnt}/f && echo 3 > /proc/sys/vm/drop_caches; cat ${m.mnt}/f > /dev/null`)).code, 0)
    const metrics = parse(t, (await scrape(url)).text)
    t.ok((metrics.get('edfs_mount_commits_total') ?? 0) >= 1, 'commits are counted')
    t.ok((metrics.get('edfs_mount_cache_hits_total') ?? 0) + (metrics.get('edfs_mount_cache_misses_total') ?? 0) > 0, 'chunk reads are counted')
    const up = [...metrics].filter(([k]) => k.startsWith('edfs_mount_server_up{'))
    t.equal(up.length, 4, 'one up gauge per server')
    t.ok(up.every(([, v]) => v === 1), 'all up')
    const sent = [...metrics].filter(([k]) => k.startsWith('edfs_mount_server_sent_bytes_total{')).reduce((a, [, v]) => a + v, 0)
    // 3 MB in 1 MiB chunks, R = 2, sealed (28 bytes per 64 KiB block), plus the journal and head.
    t.ok(sent >= 2 * 3_000_000 && sent < 2.1 * 3_000_000 + 200_000, `bytes sent to the servers: ${sent} (R = 2 of 3 MB)`)
    t.equal(metrics.get('edfs_mount_dirty_bytes'), 0, 'nothing left to store after the sync')
    t.ok(metrics.has('edfs_mount_repair_queued_blobs'), 'repair is reported')
    t.equal((await m.umount()).code, 0)
  })
})
