// Cluster benchmark: store and fetch 1 GiB through src/cluster (no FUSE) with 4 local servers and
// R = 2, each 4 MiB chunk sealed with src/crypto sealChunk; against AES-GCM sealing alone and a plain
// disk copy (write + read of 1 GiB with fs on the same disk), in the same run.
//   npm run bench:cluster            (EDFS_BENCH_MIB=256 for a shorter run)
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, open, rm } from 'node:fs/promises'
import path from 'node:path'
import { Cluster } from '../src/cluster'
import { ServerClient } from '../src/cluster/server-client'
import { openChunk, sealChunk, sealedLength } from '../src/crypto'
import { BACKGROUND_REPAIR_DEFAULTS } from '../src/volume/background-repair'
import { atHome, repairBlob } from '../src/volume/fsck'
import { BENCH_USER, BenchServer, benchRoot, startBenchServer, stopAll } from './cluster-servers'
import { dropCaches } from './drop-caches'

const MiB = 1024 * 1024
const CHUNK = 4 * MiB
const TOTAL_MIB = Number(process.env.EDFS_BENCH_MIB ?? 1024)
const CHUNKS = Math.max(1, Math.round(TOTAL_MIB / 4))
const TOTAL = CHUNKS * CHUNK
const PUT_CONCURRENCY = Number(process.env.EDFS_BENCH_PUTS ?? 8)
const FETCH_WINDOW = 8
const FETCH_BATCH = 32

const now = () => performance.now()
const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000)
/** Plaintext bytes of a chunk opened (one buffer per AEAD block). */
const bytesOpened = (blocks: Buffer[]) => blocks.reduce((n, b) => n + b.length, 0)

async function pipeline(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) await fn(next++)
  }))
}

async function served(servers: BenchServer[]): Promise<number> {
  let sum = 0
  for (const s of servers) {
    const c = new ServerClient({ url: s.url, user: BENCH_USER.name, password: BENCH_USER.password })
    try {
      sum += (await c.stats()).bytesServed
    } finally {
      c.close()
    }
  }
  return sum
}

async function main(): Promise<void> {
  const root = await benchRoot()
  const servers: BenchServer[] = []
  const results: Record<string, number> = {}
  try {
    servers.push(...(await Promise.all(Array.from({ length: 4 }, () => startBenchServer(root)))))
    const plain = randomBytes(CHUNK)
    const stamp = (i: number) => plain.writeUInt32BE(i, 0)
    console.log(`edfs cluster benchmark: ${CHUNKS} chunks of 4 MiB (${(TOTAL / MiB).toFixed(0)} MiB), 4 servers, R = 2, node ${process.version}`)

    // 1. Plain disk copy: write (then fsync) and read back 1 GiB with fs, same disk as the servers.
    const file = path.join(root, 'plain.bin')
    let t0 = now()
    const w = await open(file, 'w')
    for (let i = 0; i < CHUNKS; i++) {
      stamp(i)
      await w.write(plain, 0, CHUNK)
    }
    await w.sync()
    await w.close()
    results.diskWrite = mbps(TOTAL, now() - t0)
    await dropCaches() // a cold read of the disk, as the servers' reads below are
    t0 = now()
    const r = await open(file, 'r')
    const buf = Buffer.allocUnsafe(CHUNK)
    for (let i = 0; i < CHUNKS; i++) await r.read(buf, 0, CHUNK, i * CHUNK)
    await r.close()
    results.diskRead = mbps(TOTAL, now() - t0)
    await rm(file)
    // The same bytes as 4 MiB files, each fsynced before the next: the durability a server gives
    // every blob (8 in flight, like the cluster's puts). A reference for the store figure.
    const dir = path.join(root, 'fsync-files')
    await mkdir(dir)
    t0 = now()
    await pipeline(CHUNKS, PUT_CONCURRENCY, async (i) => {
      const fh = await open(path.join(dir, String(i)), 'w')
      await fh.write(plain, 0, CHUNK)
      await fh.sync()
      await fh.close()
    })
    results.diskWriteFsyncEach = mbps(TOTAL, now() - t0)
    await rm(dir, { recursive: true })

    // 2. AES-256-GCM sealing and opening alone (src/crypto, 64 KiB blocks).
    const key = randomBytes(32)
    const fileId = randomBytes(16)
    t0 = now()
    let sample: Buffer | null = null
    for (let i = 0; i < CHUNKS; i++) {
      stamp(i)
      sample = sealChunk(key, fileId, i, plain)
    }
    results.seal = mbps(TOTAL, now() - t0)
    t0 = now()
    for (let i = 0; i < CHUNKS; i++) openChunk(key, fileId, CHUNKS - 1, sample!)
    results.open = mbps(TOTAL, now() - t0)

    // 3. Store through the cluster: seal, hash (the blob id), put on R = 2 servers; 8 chunks in flight.
    const cluster = await Cluster.connect({ servers: servers.map((s) => s.url), user: BENCH_USER.name, password: BENCH_USER.password, replicas: Number(process.env.EDFS_BENCH_R ?? 2) })
    const ids: string[] = new Array(CHUNKS)
    let degraded = 0
    t0 = now()
    await pipeline(CHUNKS, PUT_CONCURRENCY, async (i) => {
      stamp(i)
      const sealed = sealChunk(key, fileId, i, plain)
      const id = createHash('sha256').update(sealed).digest('hex')
      ids[i] = id
      if ((await cluster.put(id, sealed)).degraded) degraded++
    })
    results.store = mbps(TOTAL, now() - t0)

    // 4. Fetch through the cluster, in file order with 8 chunks in flight (as read-ahead does):
    //    every blob hash-checked by the cluster (sha256 = id) and opened (AES-GCM).
    let servedBefore = await served(servers)
    await dropCaches()
    t0 = now()
    let opened = 0
    await pipeline(CHUNKS, FETCH_WINDOW, async (i) => {
      const sealed = await cluster.get(ids[i]!)
      opened += bytesOpened(openChunk(key, fileId, i, sealed))
    })
    results.fetch = mbps(TOTAL, now() - t0)
    const movedGet = (await served(servers)) - servedBefore

    // 5. The bulk path: getMany in batches of 32 (grouped by server, 4 requests per server).
    servedBefore = await served(servers)
    await dropCaches()
    t0 = now()
    for (let b = 0; b < CHUNKS; b += FETCH_BATCH) {
      await cluster.getMany(ids.slice(b, b + FETCH_BATCH), (id, sealed) => {
        opened += bytesOpened(openChunk(key, fileId, ids.indexOf(id), sealed))
      })
    }
    results.fetchMany = mbps(TOTAL, now() - t0)
    const movedBytes = (await served(servers)) - servedBefore
    if (opened !== 2 * TOTAL) throw new Error(`opened ${opened} bytes, expected ${2 * TOTAL}`)

    // 6. Repair: one server loses every copy; the copies come back from the other replica, unthrottled
    //    (fsck --repair), and again at the mount's default --repair-rate while a full fetch runs.
    const lose = async () => {
      const where = await cluster.locate(ids)
      const lost = ids.filter((id) => where.get(id)!.includes(servers[0]!.id))
      await pipeline(lost.length, 8, async (k) => void (await cluster.deleteOn(servers[0]!.id, lost[k]!)))
      return lost
    }
    const repairAll = async (lost: string[], bytesPerSecond: number) => {
      const where = await cluster.locate(lost)
      const counts = { copied: 0, copiedBytes: 0, trimmed: 0 }
      const start = now()
      await pipeline(lost.length, 4, async (k) => {
        const id = lost[k]!
        await repairBlob(cluster, { id, wanted: 2, good: where.get(id)! }, counts)
        const due = (counts.copiedBytes / bytesPerSecond) * 1000 - (now() - start)
        if (due > 0) await new Promise((r) => setTimeout(r, due))
      })
      return mbps(counts.copiedBytes, now() - start)
    }
    results.repair = await repairAll(await lose(), Infinity)
    const lostAgain = await lose()
    await dropCaches()
    t0 = now()
    const background = repairAll(lostAgain, BACKGROUND_REPAIR_DEFAULTS.bytesPerSecond)
    await pipeline(CHUNKS, FETCH_WINDOW, async (i) => void openChunk(key, fileId, i, await cluster.get(ids[i]!)))
    results.fetchDuringRepair = mbps(TOTAL, now() - t0)
    await background

    // 7. Rebalance: a 5th server joins; the blobs whose home now includes it move there.
    servers.push(await startBenchServer(root))
    await cluster.setMembers(servers.map((s) => ({ url: s.url, id: s.id })))
    const where5 = await cluster.locate(ids)
    const moving = ids.filter((id) => !atHome(cluster, { id, wanted: 2, good: where5.get(id)! }))
    const moved = { copied: 0, copiedBytes: 0, trimmed: 0 }
    t0 = now()
    await pipeline(moving.length, 4, async (k) => repairBlob(cluster, { id: moving[k]!, wanted: 2, good: where5.get(moving[k]!)! }, moved))
    results.rebalance = mbps(moved.copiedBytes, now() - t0)
    const movedShare = moving.length / CHUNKS
    cluster.close()

    const sealedTotal = CHUNKS * sealedLength(CHUNK)
    const f = (x: number) => x.toFixed(0).padStart(6)
    const ratio = (a: number, b: number) => (a / b).toFixed(2)
    console.log('')
    console.log(`plain disk write (fs, fsync)   ${f(results.diskWrite!)} MB/s`)
    console.log(`disk write, fsync per 4 MiB    ${f(results.diskWriteFsyncEach!)} MB/s   (what a server does per blob)`)
    console.log(`plain disk read  (fs)          ${f(results.diskRead!)} MB/s`)
    console.log(`AES-GCM seal alone             ${f(results.seal!)} MB/s`)
    console.log(`AES-GCM open alone             ${f(results.open!)} MB/s`)
    console.log(`cluster store (seal+put, R=${cluster.replicas})  ${f(results.store!)} MB/s   = ${ratio(results.store!, results.diskWrite!)} × disk write (target >= 0.40), ${ratio(results.store!, results.diskWriteFsyncEach!)} × fsync-per-file write, ${ratio(results.store!, results.seal!)} × seal alone`)
    console.log(`cluster fetch (get+open, 8)    ${f(results.fetch!)} MB/s   = ${ratio(results.fetch!, results.diskRead!)} × disk read  (target >= 0.50), ${ratio(results.fetch!, results.open!)} × open alone`)
    console.log(`cluster fetch (getMany 32+open)${f(results.fetchMany!)} MB/s   = ${ratio(results.fetchMany!, results.diskRead!)} × disk read`)
    console.log(`bytes served per fetch         get: ${movedGet}, getMany: ${movedBytes} for ${sealedTotal} sealed bytes (${ratio(movedBytes, sealedTotal)} ×; ${ratio(movedBytes, TOTAL)} × plaintext)`)
    console.log(`degraded writes                ${degraded}`)
    console.log(`repair (fsck --repair)         ${f(results.repair!)} MB/s   = ${ratio(results.repair!, results.store!)} × cluster store`)
    console.log(`fetch during background repair ${f(results.fetchDuringRepair!)} MB/s   = ${ratio(results.fetchDuringRepair!, results.fetch!)} × fetch alone (repair at ${BACKGROUND_REPAIR_DEFAULTS.bytesPerSecond / MiB} MiB/s)`)
    console.log(`rebalance (5th server)         ${f(results.rebalance!)} MB/s   = ${ratio(results.rebalance!, results.store!)} × cluster store; ${(movedShare * 100).toFixed(0)} % of the chunks moved (rendezvous: 40 %)`)
    console.log(JSON.stringify({ chunks: CHUNKS, ...Object.fromEntries(Object.entries(results).map(([k, v]) => [k, Math.round(v)])), movedBytes, sealedTotal }))
  } finally {
    await stopAll(servers)
    await rm(root, { recursive: true, force: true })
  }
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
