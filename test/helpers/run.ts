// Running programs from tests: one runner for every test (edfs itself, shell scripts, fusermount,
// diff, ...), and the registry of child processes that are SIGKILLed if the test process exits
// while they still run (a last resort: tests stop what they start by PID).
import { ChildProcess, spawn } from 'node:child_process'

export interface RunResult {
  /** The exit code; null when a signal ended it; -1 when it could not start (the reason in stderr). */
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  ms: number
}

export interface RunOptions {
  /** SIGKILL after this long (default 60 s). */
  timeoutMs?: number
  cwd?: string
  /** Written to its standard input, which is closed after it (else stdin is /dev/null). */
  input?: string
  /** Added to this process's environment. */
  env?: Record<string, string>
}

/** Child processes of the tests still running. */
export const live = new Set<ChildProcess>()
process.on('exit', () => {
  for (const c of live) {
    try {
      if (c.pid) process.kill(c.pid, 'SIGKILL')
    } catch {
      /* already gone */
    }
  }
})

/** Runs a program (no shell unless asked: run('sh', ['-c', SCRIPT])) and never throws. Output is kept up to 64 MiB / 1 MiB. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const started = Date.now()
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    })
    live.add(child)
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (d: Buffer) => {
      if (stdout.length < 64 << 20) stdout += d.toString()
    })
    child.stderr!.on('data', (d: Buffer) => {
      if (stderr.length < 1 << 20) stderr += d.toString()
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000)
    const done = (r: Omit<RunResult, 'ms'>) => {
      clearTimeout(timer)
      live.delete(child)
      resolve({ ...r, ms: Date.now() - started })
    }
    child.on('error', (err) => done({ code: -1, signal: null, stdout, stderr: stderr + err.message }))
    child.on('close', (code, signal) => done({ code, signal, stdout, stderr }))
    if (opts.input !== undefined) child.stdin!.end(opts.input)
  })
}
