// `npm run bench`: the edfs mount (4 local servers, R = 2, default 4 MiB chunks and 512 MiB cache)
// against a plain local directory, in the same run, with ordinary programs:
//   sequential write of 1 GiB ending in fsync (dd from /dev/zero; edfs does not compress), and of
//   256 MiB from a random local file; sequential read of the 1 GiB after dropping caches (and, for
//   the mount, a remount with the disk cache emptied, then one with it kept); 2,000 x 4 KiB files created and closed; cp -r of a source tree in; ls -lR
//   of it cold; fio random 4 KiB reads, then writes each followed by fsync; 1,000 SQLite transactions
//   (rollback journal, WAL); the daemon's peak RSS; bytes the servers sent per byte read and received
//   per byte written; the daemon's CPU seconds per GiB written and read.
// Every figure is printed with its ratio to the local directory and the issue's target.
//
// Needs root for drop_caches (without it the "cold" figures are warm for the local directory, and
// the run says so), /dev/fuse, and fio (`npm run bench` installs it when missing). The mount daemon
// is its own process (edfs mount).
import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { cachesDropped, dropCaches } from './drop-caches'
import { ServerClient } from '../src/cluster/server-client'
import { BENCH_USER, startBenchServer, stopAll, type BenchServer } from './cluster-servers'

const REPO = path.resolve(__dirname, '../..')
const EDFS_BIN = path.join(REPO, 'bin', 'edfs')
const GiB = 1 << 30
const CACHE = '512MiB'
const CACHE_BYTES = 512 * 1024 * 1024
/** Random 4 KiB writes with fsync, and SQLite transactions, per run. */
const RANDWRITE_BYTES = 8 << 20
const SQLITE_TXNS = 1000

interface Out {
  code: number | null
  stdout: string
  stderr: string
  ms: number
}

function run(cmd: string, args: string[], opts: { env?: Record<string, string>; timeoutMs?: number; input?: string } = {}): Promise<Out> {
  const started = performance.now()
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 900_000)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr, ms: performance.now() - started })
    })
    child.on('error', (err) => (stderr += `cannot run ${cmd}: ${err.message}`)) // 'close' follows
    if (opts.input !== undefined) child.stdin!.end(opts.input)
  })
}

async function must(cmd: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<Out> {
  const r = await run(cmd, args, opts)
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`)
  return r
}

const sh = (script: string) => must('sh', ['-c', script])


async function loadavg(): Promise<string> {
  return (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ')
}

interface Row {
  name: string
  unit: string
  local: number
  mount: number
  /** ratio = mount / local for rates, local / mount for times (so >= target is good), or absent */
  higherIsBetter?: boolean
  target: string
  ok: boolean | null
}

const rows: Row[] = []
const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000)

function fmt(n: number): string {
  return n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2)
}

async function main(): Promise<void> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'edfs-bench-mount-'))
  const servers: BenchServer[] = []
  const state = path.join(root, 'state')
  const env = { EDFS_PASSWORD: BENCH_USER.password, XDG_STATE_HOME: state, XDG_CACHE_HOME: path.join(root, 'cache') }
  const cfg = path.join(root, 'config.json')
  const mnt = path.join(root, 'mnt')
  const local = path.join(root, 'local')
  const edfs = (args: string[]) => must(process.execPath, [EDFS_BIN, ...args], { env })
  let daemonPid = 0
  let peakRss = 0
  const sampleRss = async () => {
    try {
      const s = await readFile(`/proc/${daemonPid}/status`, 'utf8')
      peakRss = Math.max(peakRss, Number(/VmHWM:\s+(\d+) kB/.exec(s)?.[1] ?? 0) * 1024)
    } catch {
      /* gone */
    }
  }
  const mount = async () => {
    const r = await edfs(['mount', mnt, '--config', cfg, '--cache-size', CACHE])
    daemonPid = Number(/daemon pid (\d+)/.exec(r.stdout)?.[1])
  }
  const umount = async () => {
    await sampleRss()
    await edfs(['umount', mnt])
  }
  const diskCache = path.join(root, 'cache')
  /** Cold: remounted (empty memory cache), the page cache dropped, and the disk cache emptied. */
  const remountCold = async () => {
    await umount()
    await rm(diskCache, { recursive: true, force: true })
    await dropCaches()
    await mount()
  }
  /** The daemon's CPU seconds so far (utime + stime from /proc, in clock ticks of 1/100 s). */
  const daemonCpu = async () => {
    const fields = (await readFile(`/proc/${daemonPid}/stat`, 'utf8')).split(') ')[1]!.split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  }

  try {
    console.log(`# edfs mount benchmark: ${os.cpus().length} CPUs, load average at start ${await loadavg()}`)
    for (let i = 0; i < 4; i++) servers.push(await startBenchServer(root))
    const clients = servers.map((s) => new ServerClient({ url: s.url, user: BENCH_USER.name, password: BENCH_USER.password }))
    const served = async () => (await Promise.all(clients.map((c) => c.stats()))).reduce((a, s) => a + s.bytesServed, 0)
    const received = async () => (await Promise.all(clients.map((c) => c.stats()))).reduce((a, s) => a + s.bytesReceived, 0)
    await edfs(['init', '--servers', servers.map((s) => s.url).join(','), '--user', BENCH_USER.name, '--config', cfg, '--replicas', '2'])
    await mkdir(mnt)
    await mkdir(local)
    await mount()

    // Sources, prepared once on the local disk: a random file and a source tree.
    const src = path.join(root, 'src')
    await sh(`mkdir -p ${src}/tree && head -c ${256 << 20} /dev/urandom > ${src}/random.bin && cp -r ${REPO}/node_modules/@tapjs ${REPO}/src ${src}/tree/`)
    const treeFiles = Number((await sh(`find ${src}/tree -type f | wc -l`)).stdout.trim())
    const treeBytes = Number((await sh(`du -sb ${src}/tree | cut -f1`)).stdout.split('\t')[0])

    const targets = { local, mount: mnt } as const
    const res: Record<string, Record<'local' | 'mount', number>> = {}
    const put = (k: string, where: 'local' | 'mount', v: number) => ((res[k] ??= { local: 0, mount: 0 })[where] = v)

    for (const where of ['local', 'mount'] as const) {
      const dir = targets[where]
      console.log(`# ${where}: ${dir} (load ${await loadavg()})`)

      let cpu0 = where === 'mount' ? await daemonCpu() : 0
      let r = await must('dd', ['if=/dev/zero', `of=${dir}/big`, 'bs=1M', 'count=1024', 'conv=fsync'])
      put('seqWrite', where, mbps(GiB, r.ms))
      if (where === 'mount') put('cpuWrite', where, (await daemonCpu()) - cpu0)
      r = await must('dd', [`if=${src}/random.bin`, `of=${dir}/random.bin`, 'bs=1M', 'conv=fsync'])
      put('seqWriteRandom', where, mbps(256 << 20, r.ms))
      if (where === 'mount') await remountCold()
      else await dropCaches()
      const before = where === 'mount' ? await served() : 0
      cpu0 = where === 'mount' ? await daemonCpu() : 0
      r = await must('dd', [`if=${dir}/big`, 'of=/dev/null', 'bs=1M'])
      put('seqRead', where, mbps(GiB, r.ms))
      if (where === 'mount') {
        put('cpuRead', where, (await daemonCpu()) - cpu0)
        put('bytesPerByte', where, ((await served()) - before) / GiB)
        // The same read after a remount with the disk cache kept: from this machine's disk.
        await umount()
        await dropCaches()
        await mount()
        const before2 = await served()
        cpu0 = await daemonCpu()
        r = await must('dd', [`if=${dir}/big`, 'of=/dev/null', 'bs=1M'])
        put('seqReadDisk', where, mbps(GiB, r.ms))
        put('cpuReadDisk', where, (await daemonCpu()) - cpu0)
        put('servedDisk', where, ((await served()) - before2) / GiB)
      } else {
        put('seqReadDisk', where, res.seqRead!.local)
      }
      await sampleRss()

      const py = `import os\nd = ${JSON.stringify(`${dir}/small`)}\nos.mkdir(d)\nb = os.urandom(4096)\nfor i in range(2000):\n    with open(os.path.join(d, 'f%04d' % i), 'wb') as f:\n        f.write(b)\n`
      r = await must('python3', ['-c', py])
      put('smallFiles', where, 2000 / (r.ms / 1000))

      r = await must('cp', ['-r', `${src}/tree`, `${dir}/tree`])
      put('cpR', where, mbps(treeBytes, r.ms))
      put('cpRFiles', where, treeFiles / (r.ms / 1000))

      if (where === 'mount') await remountCold()
      else await dropCaches()
      r = await must('sh', ['-c', `ls -lR ${dir}/tree > /dev/null`])
      put('lsR', where, r.ms)

      // fio: the file is created first (on the mount with dd: fio's own layout writes 4 KiB at a time).
      await must('dd', ['if=/dev/urandom', `of=${dir}/fio.bin`, 'bs=1M', 'count=256', 'conv=fsync'])
      if (where === 'mount') await remountCold()
      else await dropCaches()
      r = await must('fio', ['--name=randread', `--filename=${dir}/fio.bin`, '--rw=randread', '--bs=4k', '--size=256M', '--runtime=15', '--time_based', '--ioengine=psync', '--direct=0', '--output-format=json'])
      const job = (JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as { jobs: { read: { iops: number } }[] }).jobs[0]!
      put('fio', where, job.read.iops)
      await sampleRss()

      // Random 4 KiB overwrites, each followed by fsync: write amplification (slices, the journal).
      const sentBefore = where === 'mount' ? await received() : 0
      r = await must('fio', ['--name=randwrite', `--filename=${dir}/fio.bin`, '--rw=randwrite', '--bs=4k', '--size=256M', `--io_size=${RANDWRITE_BYTES}`, '--fsync=1', '--ioengine=psync', '--output-format=json'])
      const wjob = (JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as { jobs: { write: { iops: number } }[] }).jobs[0]!
      put('fioWrite', where, wjob.write.iops)
      if (where === 'mount') put('writeAmp', where, ((await received()) - sentBefore) / RANDWRITE_BYTES)

      // SQLite: 1,000 transactions of one insert each, synchronous=FULL, rollback journal then WAL.
      for (const mode of ['delete', 'wal'] as const) {
        const db = `${dir}/bench-${mode}.db`
        const sql = [`PRAGMA journal_mode=${mode};`, 'PRAGMA synchronous=FULL;', 'CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);']
        for (let k = 0; k < SQLITE_TXNS; k++) sql.push(`BEGIN; INSERT INTO t(v) VALUES ('${'x'.repeat(100)}${k}'); COMMIT;`)
        r = await must('sqlite3', [db], { input: sql.join('\n') })
        put(`sqlite-${mode}`, where, r.ms / 1000)
      }
      await sampleRss()
      console.log(`#   done (load ${await loadavg()})`)
    }
    await umount()

    const row = (name: string, key: string, unit: string, higherIsBetter: boolean, min: number | null, target: string) => {
      const v = res[key]!
      const ratio = higherIsBetter ? v.mount / v.local : v.mount / v.local
      rows.push({ name, unit, local: v.local, mount: v.mount, higherIsBetter, target, ok: min === null ? null : higherIsBetter ? ratio >= min : ratio <= min })
    }
    row('sequential write 1 GiB + fsync (dd /dev/zero)', 'seqWrite', 'MB/s', true, 0.45, '>= 0.45')
    row('sequential write 256 MiB + fsync (dd from a random local file)', 'seqWriteRandom', 'MB/s', true, null, '-')
    row('sequential read 1 GiB, cold (disk cache emptied)', 'seqRead', 'MB/s', true, 0.4, '>= 0.4')
    row('sequential read 1 GiB, remounted, disk cache warm (local: cold)', 'seqReadDisk', 'MB/s', true, null, '-')
    row('2,000 x 4 KiB files created and closed', 'smallFiles', 'files/s', true, 0.15, '>= 0.15')
    row(`cp -r of a source tree in (${treeFiles} files, ${(treeBytes / 1e6).toFixed(1)} MB)`, 'cpR', 'MB/s', true, 0.15, '>= 0.15')
    row('ls -lR of it, cold', 'lsR', 'ms', false, 4, '<= 4x time')
    row('fio random 4 KiB reads (psync, 256 MiB, 15 s)', 'fio', 'IOPS', true, null, '-')
    row(`fio random 4 KiB writes, fsync after each (${RANDWRITE_BYTES >> 20} MiB over 256 MiB)`, 'fioWrite', 'IOPS', true, null, '-')
    row(`SQLite ${SQLITE_TXNS} transactions, synchronous=FULL, rollback journal`, 'sqlite-delete', 's', false, null, '-')
    row(`SQLite ${SQLITE_TXNS} transactions, synchronous=FULL, WAL`, 'sqlite-wal', 's', false, null, '-')

    console.log('\n| figure | local | mount | mount/local | target | |')
    console.log('|---|---|---|---|---|---|')
    for (const r of rows) {
      const ratio = r.mount / r.local
      console.log(`| ${r.name} | ${fmt(r.local)} ${r.unit} | ${fmt(r.mount)} ${r.unit} | ${r.higherIsBetter ? fmt(ratio) : `${fmt(ratio)}x time`} | ${r.target} | ${r.ok === null ? '' : r.ok ? 'met' : 'MISSED'} |`)
    }
    const rssTarget = CACHE_BYTES + 150e6
    console.log(`| daemon peak RSS (VmHWM), cache ${CACHE} | | ${(peakRss / 1e6).toFixed(0)} MB | | <= ${(rssTarget / 1e6).toFixed(0)} MB | ${peakRss <= rssTarget ? 'met' : 'MISSED'} |`)
    const amp = res.writeAmp!.mount
    console.log(`| bytes received by the servers per byte written (the fio random writes above; R = 2, metadata on 3) | | ${amp.toFixed(2)} | | <= 3 (1.5 x R) | ${amp <= 3 ? 'met' : 'MISSED'} |`)
    const cpu = (k: string) => res[k]!.mount.toFixed(2)
    console.log(`| daemon CPU-s per GiB: written / read cold / read from the disk cache | | ${cpu('cpuWrite')} / ${cpu('cpuRead')} / ${cpu('cpuReadDisk')} | | read cold <= 1.5 | ${res.cpuRead!.mount <= 1.5 ? 'met' : 'MISSED'} |`)
    console.log(`| bytes from servers per byte read with the disk cache warm | | ${res.servedDisk!.mount.toFixed(4)} | | | |`)
    const bpb = res.bytesPerByte!.mount
    console.log(`| bytes from servers per byte read (cold sequential) | | ${bpb.toFixed(4)} | | <= 1.01 | ${bpb <= 1.01 ? 'met' : 'MISSED'} |`)
    console.log(`\n# load average at the end ${await loadavg()}; drop_caches ${cachesDropped() ? 'used' : 'NOT available'}`)
    await writeFile(path.join(os.tmpdir(), 'edfs-mount-bench-last.json'), JSON.stringify({ res, peakRss, bpb }, null, 2))
    for (const c of clients) c.close()
  } finally {
    if (daemonPid) {
      await run(process.execPath, [EDFS_BIN, 'umount', mnt], { env, timeoutMs: 120_000 })
      await run('fusermount', ['-uz', mnt])
    }
    await stopAll(servers)
    const mounts = await readFile('/proc/self/mounts', 'utf8')
    if (!mounts.includes(mnt)) await rm(root, { recursive: true, force: true })
    else console.error(`# ${mnt} is still mounted; left ${root} in place`)
  }
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
