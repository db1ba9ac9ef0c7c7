// Storage servers for benchmarks (no tap): `node bin/edfs server` child processes on loopback with
// temp data directories; stopped by PID and their directories removed by stopAll().
import { ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

export const BENCH_USER = { name: 'bench', password: 'bench password, not secret' }
const EDFS_BIN = path.resolve(__dirname, '../../bin/edfs')
const READY = /^edfs server listening on (https?:\/\/\S+) id=([0-9a-f]+)$/m

export interface BenchServer {
  url: string
  id: string
  dataDir: string
  child: ChildProcess
}

function run(args: string[], input: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [EDFS_BIN, ...args], { stdio: ['pipe', 'ignore', 'pipe'] })
    let err = ''
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`edfs ${args.join(' ')} failed (${code}): ${err.trim()}`))))
    child.stdin!.end(input)
  })
}

export async function startBenchServer(root: string): Promise<BenchServer> {
  const dataDir = await mkdtemp(path.join(root, 'server-'))
  await run(['server', 'useradd', BENCH_USER.name, '--data', dataDir, '--password-stdin'], `${BENCH_USER.password}\n`)
  const child = spawn(process.execPath, [EDFS_BIN, 'server', '--data', dataDir, '--host', '127.0.0.1', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] })
  return new Promise((resolve, reject) => {
    let out = ''
    let err = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`server did not start: ${err}`))
    }, 20_000)
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()))
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const m = READY.exec(out)
      if (m) {
        clearTimeout(timer)
        resolve({ url: m[1]!, id: m[2]!, dataDir, child })
      }
    })
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`server exited (${code}) before it was ready: ${err}`))
    })
  })
}

export async function stopAll(servers: BenchServer[]): Promise<void> {
  await Promise.all(
    servers.map(
      (s) =>
        new Promise<void>((resolve) => {
          if (s.child.exitCode !== null || s.child.signalCode !== null) return resolve()
          s.child.once('exit', () => resolve())
          s.child.kill('SIGTERM')
          setTimeout(() => s.child.kill('SIGKILL'), 10_000).unref()
        }),
    ),
  )
  await Promise.all(servers.map((s) => rm(s.dataDir, { recursive: true, force: true })))
}

export async function benchRoot(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'edfs-bench-cluster-'))
}
