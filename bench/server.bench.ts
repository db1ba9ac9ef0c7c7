// Storage server throughput: upload and download of 1 GiB in 4 MiB blobs over loopback against
// writing and reading the same bytes with plain fs calls on the same disk, in the same run.
// Run: npm run bench:server   (EDFS_BENCH_MIB=256 for a shorter run)
import { spawn, ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { mkdir, open, readFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { dropCaches } from './drop-caches'
import { ServerClient } from '../src/cluster/server-client'

const BLOB = 4 * 1024 * 1024
const TOTAL_MIB = Number(process.env.EDFS_BENCH_MIB ?? 1024)
const COUNT = Math.max(1, Math.floor((TOTAL_MIB * 1024 * 1024) / BLOB))
const CONCURRENCY = Number(process.env.EDFS_BENCH_CONCURRENCY ?? 8)
const BIN = path.resolve(__dirname, '../../bin/edfs')
const USER = { name: 'bench', password: 'bench password' }

function blob(i: number, base: Buffer): Buffer {
  const b = Buffer.from(base)
  b.writeUInt32BE(i, 0)
  return b
}

async function pool(n: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < n) await work(next++)
  }))
}

let serverPid = 0

/** CPU seconds (user + system) of a process, from /proc (0 when unavailable). */
function cpuOf(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return (Number(f[11]) + Number(f[12])) / 100
  } catch {
    return 0
  }
}

async function timed(label: string, bytes: number, fn: () => Promise<void>): Promise<number> {
  const t0 = process.hrtime.bigint()
  const c0 = process.cpuUsage()
  const s0 = serverPid ? cpuOf(serverPid) : 0
  await fn()
  const s = Number(process.hrtime.bigint() - t0) / 1e9
  const c = process.cpuUsage(c0)
  const mbs = bytes / 1e6 / s
  const gib = bytes / 2 ** 30
  const cpu = `client CPU ${((c.user + c.system) / 1e6 / gib).toFixed(2)} s/GiB` + (serverPid ? `, server CPU ${((cpuOf(serverPid) - s0) / gib).toFixed(2)} s/GiB` : '')
  console.log(`${label.padEnd(44)} ${mbs.toFixed(0).padStart(6)} MB/s  (${s.toFixed(2)} s; ${cpu})`)
  return mbs
}

function run(cmd: string, args: string[], input?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'ignore', 'inherit'] })
    c.on('error', reject)
    c.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}`))))
    if (input !== undefined) c.stdin!.end(input)
  })
}


function startServer(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'server', '--data', dataDir, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /listening on (\S+) id=/.exec(out)
      if (m) resolve({ child, url: m[1]! })
    })
    child.on('exit', (code) => reject(new Error(`server exited ${code}`)))
  })
}

async function main(): Promise<void> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'edfs-bench-'))
  let child: ChildProcess | undefined
  try {
    const base = randomBytes(BLOB)
    const ids = Array.from({ length: COUNT }, (_, i) => createHash('sha256').update(blob(i, base)).digest('hex'))
    const bytes = COUNT * BLOB
    console.log(`edfs server benchmark: ${COUNT} blobs of 4 MiB (${(bytes / 2 ** 20).toFixed(0)} MiB), ${CONCURRENCY} in flight, disk of ${root}`)

    // Plain fs: write with fsync per file (the server's durability), then without (page cache only).
    const plain = path.join(root, 'plain')
    await mkdir(plain)
    const plainWrite = await timed('plain fs write (fsync per file)', bytes, () =>
      pool(COUNT, async (i) => {
        const fh = await open(path.join(plain, ids[i]!), 'w')
        await fh.write(blob(i, base))
        await fh.sync()
        await fh.close()
      }))
    const plain2 = path.join(root, 'plain-nosync')
    await mkdir(plain2)
    const plainNoSync = await timed('plain fs write (no fsync)', bytes, () =>
      pool(COUNT, async (i) => {
        const fh = await open(path.join(plain2, ids[i]!), 'w')
        await fh.write(blob(i, base))
        await fh.close()
      }))
    rmSync(plain2, { recursive: true, force: true })

    const data = path.join(root, 'server')
    await run(process.execPath, [BIN, 'server', 'useradd', USER.name, '--data', data, '--password-stdin'], `${USER.password}\n`)
    const srv = await startServer(data)
    child = srv.child
    serverPid = child.pid ?? 0
    const client = new ServerClient({ url: srv.url, user: USER.name, password: USER.password, maxSockets: CONCURRENCY })
    await client.login()
    const upload = await timed('edfs server upload (PUT, loopback)', bytes, () =>
      pool(COUNT, async (i) => {
        await client.putBlob(ids[i]!, blob(i, base))
      }))

    const cold = await dropCaches()
    const serverPidSaved = serverPid
    serverPid = 0
    const plainRead = await timed(`plain fs read${cold ? ' (cold cache)' : ' (warm cache!)'}`, bytes, () =>
      pool(COUNT, async (i) => {
        const b = await readFile(path.join(plain, ids[i]!))
        if (b.length !== BLOB) throw new Error('short read')
      }))
    serverPid = serverPidSaved
    await dropCaches()
    const download = await timed(`edfs server download (GET, loopback${cold ? ', cold' : ''})`, bytes, () =>
      pool(COUNT, async (i) => {
        const b = await client.getBlob(ids[i]!)
        if (!b || b.length !== BLOB) throw new Error('short read')
        if (i === 0 && createHash('sha256').update(b).digest('hex') !== ids[0]) throw new Error('wrong bytes')
      }))
    client.close()
    console.log('')
    console.log(`upload   / plain write (fsync)    ${(upload / plainWrite).toFixed(2)}   (target >= 0.6)`)
    console.log(`upload   / plain write (no fsync) ${(upload / plainNoSync).toFixed(2)}`)
    console.log(`download / plain read             ${(download / plainRead).toFixed(2)}   (target >= 0.6)`)
  } finally {
    if (child?.pid) process.kill(child.pid, 'SIGTERM')
    await new Promise((r) => setTimeout(r, 500))
    rmSync(root, { recursive: true, force: true })
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
