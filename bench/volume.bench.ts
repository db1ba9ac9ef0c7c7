// Volume benchmark: put/get of 1 GiB and of 2,000 x 4 KiB files through src/volume (no FUSE, no
// CLI process) with 4 local servers and R = 2; metadata changes per second in memory and committed;
// against plain `cp` of the same data in the same run.
//   npm run bench:volume          (EDFS_BENCH_MIB=256 for a shorter run)
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, open, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { Cluster } from '../src/cluster'
import { createKeyFile, deriveVolumeKeys } from '../src/crypto'
import { O_RDONLY, O_WRONLY, Volume, VolumeStore } from '../src/volume'
import { BENCH_USER, BenchServer, benchRoot, startBenchServer, stopAll } from './cluster-servers'

const MiB = 1024 * 1024
const BIG = Number(process.env.EDFS_BENCH_MIB ?? 1024) * MiB
const SMALL_FILES = 2000
const SMALL_SIZE = 4096
const IO = MiB
const IN_FLIGHT = 16
const META_OPS = 50_000

const now = () => performance.now()
const uid = process.getuid?.() ?? 0
const gid = process.getgid?.() ?? 0

function sh(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] })
    c.on('error', reject)
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}`))))
  })
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = now()
  await fn()
  return now() - t0
}

async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!)
  }))
}

async function mkdirp(v: Volume, dir: string): Promise<void> {
  let at = ''
  for (const part of dir.split('/').filter(Boolean)) {
    at += `/${part}`
    if (!(await v.getattr(at).then(() => true, () => false))) await v.mkdir(at, 0o755, uid, gid)
  }
}

async function putFile(v: Volume, local: string, remote: string, buf: Buffer, flush: boolean): Promise<number> {
  const src = await open(local, 'r')
  const fh = await v.create(remote, 0o644, uid, gid, O_WRONLY)
  try {
    for (let pos = 0; ; ) {
      const { bytesRead } = await src.read(buf, 0, buf.length, pos)
      if (bytesRead === 0) break
      await v.write(fh, buf, bytesRead, pos)
      pos += bytesRead
    }
    if (flush) {
      await v.flush(fh)
      await v.release(fh)
    }
  } finally {
    await src.close()
  }
  return fh
}

async function getFile(v: Volume, remote: string, local: string, buf: Buffer): Promise<void> {
  const out = await open(local, 'w')
  const fh = await v.open(remote, O_RDONLY)
  try {
    for (let pos = 0; ; ) {
      const n = await v.read(fh, buf, buf.length, pos)
      if (n === 0) break
      await out.write(buf, 0, n, pos)
      pos += n
    }
  } finally {
    await v.release(fh)
    await out.close()
  }
}

/** The CLI's strategy for many files: IN_FLIGHT files written at once, flushed in batches of 64 (shared commits). */
async function putTree(v: Volume, files: { local: string; remote: string }[], batchFlush: boolean): Promise<void> {
  const bufs: Buffer[] = []
  let batch: number[] = []
  const flushAll = async () => {
    const b = batch
    batch = []
    await Promise.all(b.map(async (fh) => {
      await v.flush(fh)
      await v.release(fh)
    }))
  }
  await pool(files, IN_FLIGHT, async (f) => {
    const buf = bufs.pop() ?? Buffer.allocUnsafe(IO)
    const fh = await putFile(v, f.local, f.remote, buf, !batchFlush)
    bufs.push(buf)
    if (batchFlush) {
      batch.push(fh)
      if (batch.length >= 64) await flushAll()
    }
  })
  await flushAll()
}

async function main(): Promise<void> {
  const root = await benchRoot()
  const servers: BenchServer[] = []
  const rows: [string, number, string][] = []
  const row = (what: string, ms: number, extra = '') => {
    rows.push([what, ms, extra])
    console.log(`  ${what.padEnd(48)} ${(ms / 1000).toFixed(2).padStart(7)} s  ${extra}`)
  }
  try {
    servers.push(...(await Promise.all(Array.from({ length: 4 }, () => startBenchServer(root)))))
    const cluster = await Cluster.connect({ servers: servers.map((s) => s.url), user: BENCH_USER.name, password: BENCH_USER.password, replicas: 2 })
    const store = cluster as unknown as VolumeStore
    const { keyFile, masterKey } = await createKeyFile(BENCH_USER.password)
    const keys = deriveVolumeKeys(masterKey)
    await Volume.create(store, keys, { volumeId: keyFile.volumeId, chunkSize: 4 * MiB, replicas: 2, uid, gid })
    console.log(`edfs volume benchmark: 4 servers, R = 2, 4 MiB chunks, node ${process.version}; ${BIG / MiB} MiB file, ${SMALL_FILES} x ${SMALL_SIZE} B files`)

    // Data on local disk.
    const data = path.join(root, 'data')
    await mkdir(data)
    const bigFile = path.join(data, 'big.bin')
    const w = await open(bigFile, 'w')
    const block = randomBytes(8 * MiB)
    for (let off = 0; off < BIG; off += block.length) {
      block.writeUInt32BE(off / block.length, 0)
      await w.write(block, 0, Math.min(block.length, BIG - off))
    }
    await w.close()
    const tree = path.join(data, 'tree')
    const files: { local: string; remote: string }[] = []
    for (let i = 0; i < SMALL_FILES; i++) {
      const sub = `d${i % 10}/e${Math.floor(i / 10) % 10}`
      await mkdir(path.join(tree, sub), { recursive: true })
      await writeFile(path.join(tree, sub, `f${i}`), randomBytes(SMALL_SIZE))
      files.push({ local: path.join(tree, sub, `f${i}`), remote: `/tree/${sub}/f${i}` })
    }

    // Baselines: cp to local disk.
    const cpBig = await timed(() => sh('cp', [bigFile, path.join(root, 'cp-big.bin')]))
    row('cp 1 file (local disk)', cpBig, `${(BIG / MiB / (cpBig / 1000)).toFixed(0)} MiB/s`)
    const cpTree = await timed(() => sh('cp', ['-r', tree, path.join(root, 'cp-tree')]))
    row(`cp -r ${SMALL_FILES} small files (local disk)`, cpTree, `${(SMALL_FILES / (cpTree / 1000)).toFixed(0)} files/s`)
    await rm(path.join(root, 'cp-big.bin'))

    // The volume.
    const v = await Volume.open(store, keys, { readOnly: false, cacheBytes: 0, maxUploads: 16 })
    const buf = Buffer.allocUnsafe(IO)
    const putBig = await timed(() => putFile(v, bigFile, '/big.bin', buf, true).then(() => undefined))
    row('volume put 1 file', putBig, `${(BIG / MiB / (putBig / 1000)).toFixed(0)} MiB/s, ${(putBig / cpBig).toFixed(1)}x cp`)

    for (const f of files) await mkdirp(v, path.posix.dirname(f.remote))
    const putSmall = await timed(() => putTree(v, files, true))
    row(`volume put ${SMALL_FILES} small files (batched flush)`, putSmall, `${(SMALL_FILES / (putSmall / 1000)).toFixed(0)} files/s, ${(putSmall / cpTree).toFixed(1)}x cp  (target <= 3x)`)
    for (const f of files) await mkdirp(v, path.posix.dirname(f.remote).replace('/tree', '/tree2'))
    const putSmall2 = await timed(() => putTree(v, files.map((f) => ({ local: f.local, remote: f.remote.replace('/tree', '/tree2') })), false))
    row(`volume put ${SMALL_FILES} small files (flush each)`, putSmall2, `${(SMALL_FILES / (putSmall2 / 1000)).toFixed(0)} files/s, ${(putSmall2 / cpTree).toFixed(1)}x cp`)

    // Metadata changes.
    await v.mkdir('/meta', 0o755, uid, gid)
    await v.commit()
    const inMem = await timed(async () => {
      for (let i = 0; i < META_OPS / 2; i++) {
        await v.mkdir(`/meta/d${i}`, 0o755, uid, gid)
        await v.chmod(`/meta/d${i}`, 0o700)
      }
    })
    row(`${META_OPS} metadata changes in memory (mkdir+chmod)`, inMem, `${Math.round(META_OPS / (inMem / 1000))} changes/s  (target >= 50,000/s)`)
    const commitAll = await timed(() => v.commit())
    row(`  committing them (one group commit)`, commitAll, `${Math.round(META_OPS / ((inMem + commitAll) / 1000))} changes/s incl. commit`)
    const SEQ = 200
    const seq = await timed(async () => {
      for (let i = 0; i < SEQ; i++) {
        await v.mkdir(`/meta/s${i}`, 0o755, uid, gid)
        await v.commit()
      }
    })
    row(`${SEQ} metadata changes, each committed alone`, seq, `${Math.round(SEQ / (seq / 1000))} committed changes/s`)
    const PAR = 2000
    const par = await timed(async () => {
      await pool(Array.from({ length: PAR }, (_, i) => i), 64, async (i) => {
        await v.mkdir(`/meta/p${i}`, 0o755, uid, gid)
        await v.commit()
      })
    })
    row(`${PAR} metadata changes, 64 writers, each waits for commit`, par, `${Math.round(PAR / (par / 1000))} committed changes/s (group commit)`)
    await v.close()

    // Reading back with a fresh read-only volume (cold cache).
    const r = await Volume.open(store, keys, { readOnly: true, cacheBytes: 256 * MiB })
    const outDir = path.join(root, 'out')
    await mkdir(outDir)
    const getBig = await timed(() => getFile(r, '/big.bin', path.join(outDir, 'big.bin'), buf))
    row('volume get 1 file', getBig, `${(BIG / MiB / (getBig / 1000)).toFixed(0)} MiB/s, ${(getBig / cpBig).toFixed(1)}x cp`)
    const getSmall = await timed(async () => {
      const bufs: Buffer[] = []
      await pool(files, IN_FLIGHT, async (f) => {
        const b = bufs.pop() ?? Buffer.allocUnsafe(IO)
        const local = path.join(outDir, f.remote)
        await mkdir(path.dirname(local), { recursive: true })
        await getFile(r, f.remote, local, b)
        bufs.push(b)
      })
    })
    row(`volume get ${SMALL_FILES} small files`, getSmall, `${(SMALL_FILES / (getSmall / 1000)).toFixed(0)} files/s, ${(getSmall / cpTree).toFixed(1)}x cp`)
    await r.close()
    await sh('cmp', [bigFile, path.join(outDir, 'big.bin')])
    await sh('diff', ['-r', tree, path.join(outDir, 'tree')])
    console.log('  (read back byte for byte: ok)')
    cluster.close()
  } finally {
    await stopAll(servers)
    await rm(root, { recursive: true, force: true })
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
