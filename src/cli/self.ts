// Running this same CLI as a child process (quickstart and the mount daemon use it).
import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { UsageError } from './errors'

/** bin/edfs of this installation (dist/src/cli -> the package root). */
export const EDFS_BIN = resolve(__dirname, '..', '..', '..', 'bin', 'edfs')

/**
 * Runs `edfs ARGS` and resolves when it exits 0; otherwise rejects with its last error line.
 * `stdio: 'inherit'` lets the child talk to the user directly.
 */
export function runSelf(args: string[], env: Record<string, string> = {}, stdio: 'pipe' | 'inherit' = 'pipe'): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [EDFS_BIN, ...args], {
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
