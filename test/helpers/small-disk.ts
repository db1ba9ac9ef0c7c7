// A small file system of its own (tmpfs of a given size) for tests that fill a disk. Needs root
// (CI and the dev container run as root); fails loudly otherwise instead of skipping.
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import type { Test } from 'tap'

const run = promisify(execFile)

/**
 * Mounts a tmpfs of `mib` MiB on a new directory and unmounts it at teardown. Call it before
 * starting the servers that use it, so their teardown (kill) runs before this one.
 */
export async function smallDisk(t: Test, mib: number): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'edfs-disk-'))
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${mib}m,mode=0700`, 'tmpfs', dir])
  } catch (err) {
    await rm(dir, { recursive: true, force: true })
    throw new Error(`cannot mount a ${mib} MiB tmpfs for a full-disk test (root needed): ${(err as Error).message}`)
  }
  t.teardown(async () => {
    await run('umount', ['-l', dir]).catch(() => undefined)
    await rm(dir, { recursive: true, force: true })
  })
  return dir
}
