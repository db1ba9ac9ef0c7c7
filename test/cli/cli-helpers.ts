// Helpers for the CLI tests: real servers, a volume made with `edfs init`, and `edfs` run as a child
// process (async spawn) with that config and password.
import type { Test } from 'tap'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { RunResult, run } from '../helpers/run'
import { EDFS_BIN, RunningServer, TEST_USER, runEdfs, startServers, tmpDir } from '../helpers/servers'

export { TEST_USER, run, tmpDir }
export type { RunResult, RunningServer }

export interface CliVolume {
  servers: RunningServer[]
  dir: string
  config: string
  /** Runs `edfs ARGS --config CONFIG` with EDFS_PASSWORD set. */
  run(args: string[], opts?: { env?: Record<string, string>; timeoutMs?: number; input?: string; config?: string }): Promise<RunResult>
  /** Runs and fails the test when the exit code is not 0. */
  ok(t: Test, args: string[], opts?: { timeoutMs?: number; config?: string }): Promise<RunResult>
}

/** Starts `n` servers and creates a volume on them with `edfs init`. */
export async function makeCliVolume(t: Test, n: number, initArgs: string[] = ['--chunk-size', '256KiB']): Promise<CliVolume> {
  const servers = await startServers(t, n)
  const dir = tmpDir(t, 'edfs-cli-')
  const config = path.join(dir, 'config', 'config.json')
  const env = { EDFS_PASSWORD: TEST_USER.password, EDFS_CONFIG: '' }
  const runCli: CliVolume['run'] = (args, opts = {}) =>
    runEdfs([...args, '--config', opts.config ?? config], { env: { ...env, ...opts.env }, timeoutMs: opts.timeoutMs ?? 60_000, input: opts.input })
  const ok: CliVolume['ok'] = async (tt, args, opts) => {
    const r = await runCli(args, opts)
    if (r.code !== 0) tt.fail(`edfs ${args.join(' ')} exited ${r.code ?? r.signal}: ${r.stderr.trim()}`)
    return r
  }
  const init = await runCli(['init', '--servers', servers.map((s) => s.url).join(','), '--user', TEST_USER.name, ...initArgs])
  if (init.code !== 0) throw new Error(`edfs init failed: ${init.stderr}`)
  return { servers, dir, config, run: runCli, ok }
}

/** Ids of the blobs a server stores for the test user (from its data directory). */
export async function blobIds(server: RunningServer, user = TEST_USER.name): Promise<string[]> {
  const root = path.join(server.dataDir, 'users', user, 'blobs')
  const out: string[] = []
  for (const prefix of await readdir(root).catch(() => [] as string[])) {
    for (const name of await readdir(path.join(root, prefix)).catch(() => [] as string[])) if (/^[0-9a-f]{64}$/.test(name)) out.push(name)
  }
  return out
}

/** Writes `size` random bytes to a new file. */
export async function randomFile(file: string, size: number): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true })
  const fh = await (await import('node:fs/promises')).open(file, 'w')
  try {
    for (let off = 0; off < size; off += 8 * 1024 * 1024) await fh.write(randomBytes(Math.min(8 * 1024 * 1024, size - off)))
  } finally {
    await fh.close()
  }
}

/** A tree of `count` small files in nested subfolders; returns the number of bytes written. */
export async function smallTree(root: string, count: number, marker = ''): Promise<number> {
  let bytes = 0
  const dirs = new Set<string>()
  for (let i = 0; i < count; i++) {
    const d = path.join(root, `d${i % 7}`, `e${(i >> 3) % 5}`, ...(i % 3 === 0 ? [`f${i % 4}`] : []))
    if (!dirs.has(d)) {
      await mkdir(d, { recursive: true })
      dirs.add(d)
    }
    const data = Buffer.concat([Buffer.from(marker), randomBytes((i * 37) % 3000)])
    await writeFile(path.join(d, `file-${i}.bin`), data)
    bytes += data.length
  }
  return bytes
}

/** Runs a program (async) and resolves with its exit code and output. */
/** `diff -r a b`: resolves true when the trees are byte for byte the same. */
export async function sameTree(t: Test, a: string, b: string): Promise<boolean> {
  const r = await run('diff', ['-r', a, b])
  if (r.code !== 0) t.comment(`diff -r ${a} ${b}:\n${r.stdout.slice(0, 2000)}${r.stderr}`)
  return r.code === 0
}

/** `edfs ARGS` as a child we can signal. */
export function spawnEdfs(args: string[], env: Record<string, string>) {
  return spawn(process.execPath, [EDFS_BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
}
