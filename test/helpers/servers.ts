// Real storage servers for tests: child processes `node bin/edfs server --data DIR --port 0`,
// each with a temp data directory and its users file written before it starts.
// Every server is killed (by PID) in t.teardown, and on process exit as a last resort.
import type { Test } from 'tap'
import { ChildProcess, spawn } from 'node:child_process'
import { RunOptions, RunResult, live, run } from './run'
import { mkdtempSync, rmSync } from 'node:fs'
import { Layout, addUser } from '../../servers'
import { Verifier, makeVerifier } from '../../src/protocol'
import os from 'node:os'
import path from 'node:path'

/** Absolute path to bin/edfs (EDFS_TEST_BIN overrides it, e.g. to try another build). */
export const EDFS_BIN: string = process.env.EDFS_TEST_BIN ?? path.resolve(__dirname, '../../../bin/edfs')

export const TEST_USER = { name: 'alice', password: 'correct horse battery staple' }

export interface ServerOptions {
  /** Reuse a data directory (it is then not removed at teardown). */
  dataDir?: string
  /** Users to add before start (default [TEST_USER]); users already in the users file are kept. */
  users?: { name: string; password: string }[]
  /** Extra `edfs server` arguments, e.g. ['--max-blob-size', '1MiB', '--request-timeout', '500']. */
  args?: string[]
  env?: Record<string, string>
  /** A command the server runs under, e.g. ['ip', 'netns', 'exec', NS] (it must exec, not fork). */
  prefix?: string[]
}

export interface RunningServer {
  url: string
  id: string
  dataDir: string
  pid: number
  /** Exit code of the last run (null while running or after a signal). */
  exitCode: number | null
  /** Everything the server wrote on stderr (all runs). */
  stderr(): string
  stop(signal?: NodeJS.Signals): Promise<void>
  kill9(): Promise<void>
  pause(): void
  resume(): void
  restart(): Promise<void>
}

const READY = /^edfs server listening on (https?:\/\/\S+) id=([0-9a-f]+)$/m
const START_TIMEOUT_MS = 20_000
/** A temp directory under os.tmpdir(), removed at teardown. */
export function tmpDir(t: Test, prefix = 'edfs-test-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}


/** Runs `bin/edfs ARGS` (async), with optional stdin; resolves when it exits. */
export function runEdfs(args: string[], opts: RunOptions & { prefix?: string[] } = {}): Promise<RunResult> {
  const [cmd, ...argv] = [...(opts.prefix ?? []), process.execPath, EDFS_BIN, ...args]
  return run(cmd!, argv, { timeoutMs: 30_000, ...opts })
}

/**
 * Adds users, each with one verifier per test process: the same salt on every server, as
 * quickstart does, so a client's login to all of them derives the password's keys once (scrypt is
 * most of a CLI call's time). `edfs server useradd` itself is tested in test/server/cli.test.ts,
 * servers with salts of their own in test/cluster/login-keys.test.ts.
 */
export async function addUsers(dataDir: string, users: { name: string; password: string }[]): Promise<void> {
  const file = new Layout(dataDir).usersFile
  for (const u of users) {
    const key = `${u.name}\0${u.password}`
    let verifier = verifiers.get(key)
    if (!verifier) verifiers.set(key, (verifier = makeVerifier(u.password)))
    await addUser(file, u.name, await verifier)
  }
}
const verifiers = new Map<string, Promise<Verifier>>()

class ServerProcess implements RunningServer {
  url = ''
  id = ''
  pid = 0
  exitCode: number | null = null
  private child: ChildProcess | null = null
  private exited: Promise<void> = Promise.resolve()
  private err = ''
  private port = 0

  constructor(
    readonly dataDir: string,
    private readonly args: string[],
    private readonly env: Record<string, string>,
    private readonly prefix: string[] = [],
  ) {}

  stderr(): string {
    return this.err
  }

  async start(port: number): Promise<void> {
    const [cmd, ...argv] = [...this.prefix, process.execPath, EDFS_BIN, 'server', '--data', this.dataDir, '--host', '127.0.0.1', '--port', String(port), ...this.args]
    const child = spawn(cmd!, argv, { env: { ...process.env, ...this.env }, stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child
    live.add(child)
    this.exitCode = null
    this.exited = new Promise((resolve) => {
      child.on('exit', (code) => {
        this.exitCode = code
        live.delete(child)
        resolve()
      })
    })
    let out = ''
    child.stderr!.on('data', (d: Buffer) => {
      if (this.err.length < 256 * 1024) this.err += d.toString()
    })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        reject(new Error(`edfs server did not start within ${START_TIMEOUT_MS} ms; stderr: ${this.err.trim()}`))
      }, START_TIMEOUT_MS)
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString()
        const m = READY.exec(out)
        if (m) {
          clearTimeout(timer)
          this.url = m[1]!
          this.id = m[2]!
          this.pid = child.pid!
          this.port = Number(new URL(this.url).port)
          resolve()
        }
      })
      child.on('error', (e) => {
        clearTimeout(timer)
        reject(e)
      })
      child.on('exit', (code, signal) => {
        clearTimeout(timer)
        reject(new Error(`edfs server exited (${code ?? signal}) before it was ready; stderr: ${this.err.trim()}`))
      })
    })
  }

  private running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!this.running()) return
    this.child!.kill(signal)
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), 15_000)
    await this.exited
    clearTimeout(timer)
  }

  async kill9(): Promise<void> {
    await this.stop('SIGKILL')
  }

  pause(): void {
    if (this.running()) process.kill(this.pid, 'SIGSTOP')
  }

  resume(): void {
    if (this.running()) process.kill(this.pid, 'SIGCONT')
  }

  async restart(): Promise<void> {
    if (this.running()) {
      this.resume()
      await this.stop()
    }
    // Same port when it is free again; another one when someone took it meanwhile.
    for (let attempt = 0; ; attempt++) {
      try {
        await this.start(this.port)
        return
      } catch (err) {
        if (!/already in use/.test(String(err)) || attempt >= 10) {
          if (/already in use/.test(String(err))) return this.start(0)
          throw err
        }
        await new Promise((r) => setTimeout(r, 200))
      }
    }
  }
}

export async function startServer(t: Test, opts: ServerOptions = {}): Promise<RunningServer> {
  const owned = !opts.dataDir
  const dataDir = opts.dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'edfs-server-'))
  const server = new ServerProcess(dataDir, opts.args ?? [], opts.env ?? {}, opts.prefix)
  t.teardown(async () => {
    await server.kill9()
    if (owned) rmSync(dataDir, { recursive: true, force: true })
  })
  await addUsers(dataDir, opts.users ?? [TEST_USER])
  await server.start(0)
  return server
}

export async function startServers(t: Test, n: number, opts: Omit<ServerOptions, 'dataDir'> = {}): Promise<RunningServer[]> {
  return Promise.all(Array.from({ length: n }, () => startServer(t, opts)))
}
