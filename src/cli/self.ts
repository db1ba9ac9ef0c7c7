// Running this same CLI as a child process (quickstart and the mount daemon use it).
import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { UsageError } from './errors'

/**
 * V8 flags for every edfs process this CLI starts (and bin/edfs's shebang, kept equal by a test).
 * The default old-generation limit starts just above a small heap, so while the mount streams data
 * each scavenge's promotions trigger a full GC: ~170 mark-compacts per GiB read, with a 12 MB heap.
 * A 64 MiB start cut them to ~40 and the daemon's CPU per GiB from 5.6 to 3.6 s read and from 6.3 to
 * 4.5 s written (docs/mount.md). V8 reads it only at start: not settable later, nor in NODE_OPTIONS.
 */
export const NODE_FLAGS = ['--initial-old-space-size=64']

/** bin/edfs of this installation (dist/src/cli -> the package root). */
export const EDFS_BIN = resolve(__dirname, '..', '..', '..', 'bin', 'edfs')

/**
 * Runs `edfs ARGS` and resolves when it exits 0; otherwise rejects with its last error line.
 * `stdio: 'inherit'` lets the child talk to the user directly.
 */
export function runSelf(args: string[], env: Record<string, string> = {}, stdio: 'pipe' | 'inherit' = 'pipe'): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [...NODE_FLAGS, EDFS_BIN, ...args], {
      env: { ...process.env, ...env },
      stdio: stdio === 'inherit' ? ['ignore', 'inherit', 'inherit'] : ['ignore', 'pipe', 'pipe'],
    })
    let errText = ''
    child.stderr?.on('data', (d: Buffer) => (errText += d.toString()))
    child.stdout?.on('data', (d: Buffer) => process.stdout.write(d))
    child.on('error', reject)
    child.on('exit', (code) => {
      if (code === 0) resolvePromise()
      else reject(new UsageError(errText.trim().split('\n').pop()?.replace(/^edfs: /, '') || `\`edfs ${args[0]}\` failed (exit code ${code}, see above)`))
    })
  })
}
