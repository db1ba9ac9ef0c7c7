// A real S3 endpoint for tests: a one-node Ceph cluster (monitor, memstore OSD, radosgw on
// 127.0.0.1) run as child processes in the foreground, each stopped by PID. From an empty directory
// to a bucket in ~1-2 s; the facts behind each setting are in docs/s3.md ("Testing against Ceph").
import type { Test } from 'tap'
import { ChildProcess, execFile, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { live } from './run'

const run = promisify(execFile)

export interface Ceph {
  /** http://127.0.0.1:PORT of radosgw. */
  endpoint: string
  accessKey: string
  secretKey: string
  /** Environment for an S3 client (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION). */
  env: Record<string, string>
  /** An s3:// member URL for `bucket/prefix` at this endpoint. */
  memberUrl(bucket: string, prefix?: string, extra?: string): string
  /** Makes a bucket (edfs expects it to exist, as on AWS). */
  createBucket(bucket: string): Promise<void>
  /** Every object of a bucket, bytes included (for "nothing readable in the bucket"). */
  objects(bucket: string): Promise<{ key: string; body: Buffer }[]>
  /** Stops radosgw only (the S3 endpoint goes away; the data stays). */
  stopGateway(signal?: NodeJS.Signals): Promise<void>
  /** Starts radosgw again on the same port. */
  startGateway(): Promise<void>
  stop(): Promise<void>
}

export const CEPH_BINARIES = ['ceph-mon', 'ceph-osd', 'radosgw', 'monmaptool', 'radosgw-admin', 'ceph']

export async function cephInstalled(): Promise<boolean> {
  try {
    await Promise.all(CEPH_BINARIES.map((b) => run('sh', ['-c', `command -v ${b}`])))
    return true
  } catch {
    return false
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resolve(port))
    })
    s.on('error', reject)
  })
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown = null
  while (Date.now() < deadline) {
    try {
      const v = await probe()
      if (v !== null) return v
    } catch (err) {
      last = err
    }
    await sleep(50)
  }
  throw new Error(`ceph: ${what} not within ${timeoutMs} ms${last ? `: ${(last as Error).message}` : ''}`)
}

/** Starts a cluster in a temp directory; `stop()` ends every daemon (radosgw, OSD, monitor last). */
export async function startCeph(opts: { memstoreBytes?: number } = {}): Promise<Ceph> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'edfs-ceph-'))
  const [v2, v1, rgwPort] = [await freePort(), await freePort(), await freePort()]
  const fsid = randomUUID()
  const conf = path.join(dir, 'ceph.conf')
  await Promise.all(['mon', 'osd', 'rgw', 'run', 'log'].map((d) => mkdir(path.join(dir, d), { recursive: true })))
  await writeFile(conf, [
    '[global]',
    `fsid = ${fsid}`,
    `mon host = [v2:127.0.0.1:${v2},v1:127.0.0.1:${v1}]`,
    'public network = 127.0.0.0/8',
    'ms bind ipv6 = false',
    'auth cluster required = none', 'auth service required = none', 'auth client required = none',
    'auth allow insecure global id reclaim = true',
    // radosgw hangs at start with auth none unless the monitor client mode is this.
    'ms mon client mode = crc secure',
    'paxos propose interval = 0.01', 'paxos min wait = 0.001',
    'osd objectstore = memstore', `memstore device bytes = ${opts.memstoreBytes ?? 1024 ** 3}`,
    'osd pool default size = 1', 'osd pool default min size = 1', 'osd pool default pg num = 8', 'osd pool default pgp num = 8',
    'osd pool default pg autoscale mode = off', 'osd crush chooseleaf type = 0', 'mon allow pool size one = true',
    'mon warn on pool no redundancy = false',
    `run dir = ${dir}/run`, `admin socket = ${dir}/run/$name.asok`, `log file = ${dir}/log/$name.log`,
    `mon data = ${dir}/mon/$name`, `osd data = ${dir}/osd/$name`, `rgw data = ${dir}/rgw/$name`,
    '[client.rgw.a]',
    `rgw frontends = beast endpoint=127.0.0.1:${rgwPort} tcp_nodelay=1`,
    '',
  ].join('\n'))
  const ceph = (...args: string[]) => run('ceph', ['-c', conf, '--connect-timeout', '5', ...args], { timeout: 15_000 })
  const daemons: { name: string; child: ChildProcess; exited: Promise<void> }[] = []
  const daemon = (name: string, cmd: string, args: string[]): void => {
    const child = spawn(cmd, ['-c', conf, '-f', ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    live.add(child)
    let err = ''
    child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4096)))
    const exited = new Promise<void>((resolve) => child.on('exit', () => {
      live.delete(child)
      resolve()
    }))
    child.on('error', (e) => (err += e.message))
    daemons.push({ name, child, exited })
  }
  const stopDaemon = async (name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    const i = daemons.findIndex((d) => d.name === name)
    if (i < 0) return
    const d = daemons[i]!
    daemons.splice(i, 1)
    if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill(signal)
    const timer = setTimeout(() => d.child.kill('SIGKILL'), 5000)
    await d.exited
    clearTimeout(timer)
  }
  const stop = async (): Promise<void> => {
    for (const name of ['rgw', 'osd', 'mon']) await stopDaemon(name)
    await rm(dir, { recursive: true, force: true })
  }
  const gatewayUp = () => until('radosgw answering', 30_000, async () => {
    const r = await fetch(`http://127.0.0.1:${rgwPort}/`).catch(() => null)
    return r ? true : null
  })
  const startGateway = async (): Promise<void> => {
    if (daemons.some((d) => d.name === 'rgw')) return
    daemon('rgw', 'radosgw', ['-n', 'client.rgw.a'])
    await gatewayUp()
  }
  try {
    await run('monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${v2},v1:127.0.0.1:${v1}]`, path.join(dir, 'monmap')])
    await run('ceph-mon', ['-c', conf, '--mkfs', '-i', 'a', '--monmap', path.join(dir, 'monmap')])
    daemon('mon', 'ceph-mon', ['-i', 'a'])
    await until('monitor quorum', 20_000, async () => ((await ceph('mon', 'stat')).stdout.includes('quorum') ? true : null))
    const uuid = randomUUID()
    const id = (await ceph('osd', 'new', uuid)).stdout.trim()
    await mkdir(path.join(dir, 'osd', `osd.${id}`), { recursive: true })
    await run('ceph-osd', ['-c', conf, '-i', id, '--mkfs', '--osd-uuid', uuid])
    daemon('osd', 'ceph-osd', ['-i', id])
    await until('the OSD up', 20_000, async () => ((await ceph('osd', 'dump')).stdout.match(/^osd\.\d+ up/m) ? true : null))
    await startGateway()
    const accessKey = 'EDFSTESTACCESSKEY'
    const secretKey = 'edfs-test-secret-key-0123456789'
    await run('radosgw-admin', ['-c', conf, 'user', 'create', '--uid=edfs', '--display-name=edfs', `--access-key=${accessKey}`, `--secret-key=${secretKey}`], { timeout: 15_000 })
    const endpoint = `http://127.0.0.1:${rgwPort}`
    const env = { AWS_ACCESS_KEY_ID: accessKey, AWS_SECRET_ACCESS_KEY: secretKey, AWS_REGION: 'us-east-1' }
    return {
      endpoint, accessKey, secretKey, env,
      memberUrl: (bucket, prefix = '', extra = '') => `s3://${bucket}/${prefix}?endpoint=${encodeURIComponent(endpoint)}&path-style=1${extra ? `&${extra}` : ''}`,
      createBucket: (bucket) => withS3(endpoint, env, async (s3, sdk) => {
        await s3.send(new sdk.CreateBucketCommand({ Bucket: bucket }))
      }),
      objects: (bucket) => withS3(endpoint, env, (s3, sdk) => listObjects(s3, sdk, bucket)),
      stopGateway: (signal) => stopDaemon('rgw', signal),
      startGateway,
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}

/** A running cluster for one test file, stopped at teardown. */
export async function cephForTest(t: Test): Promise<Ceph> {
  const c = await startCeph()
  t.teardown(() => c.stop())
  return c
}

type Sdk = typeof import('@aws-sdk/client-s3')

async function withS3<T>(endpoint: string, env: Record<string, string>, fn: (s3: InstanceType<Sdk['S3Client']>, sdk: Sdk) => Promise<T>): Promise<T> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true'
  const sdk = await import('@aws-sdk/client-s3')
  const s3 = new sdk.S3Client({ endpoint, forcePathStyle: true, region: env.AWS_REGION, credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID!, secretAccessKey: env.AWS_SECRET_ACCESS_KEY! } })
  try {
    return await fn(s3, sdk)
  } finally {
    s3.destroy()
  }
}

async function listObjects(s3: InstanceType<Sdk['S3Client']>, sdk: Sdk, bucket: string): Promise<{ key: string; body: Buffer }[]> {
  const out: { key: string; body: Buffer }[] = []
  let token: string | undefined
  do {
    const page = await s3.send(new sdk.ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }))
    for (const o of page.Contents ?? []) {
      const got = await s3.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: o.Key! }))
      out.push({ key: o.Key!, body: Buffer.from(await got.Body!.transformToByteArray()) })
    }
    token = page.NextContinuationToken
  } while (token)
  return out
}
