// Cold-cache figures: write dirty pages out and drop the page cache (root only). Returns false
// where it cannot, and says once that "cold" local figures are then warm.
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'

let warned = false

export async function dropCaches(): Promise<boolean> {
  await new Promise<void>((resolve) => spawn('sync', [], { stdio: 'ignore' }).on('exit', () => resolve()).on('error', () => resolve()))
  try {
    await writeFile('/proc/sys/vm/drop_caches', '3\n')
    return true
  } catch (err) {
    if (!warned) console.log(`# cannot drop caches (${(err as Error).message}): "cold" figures are warm`)
    warned = true
    return false
  }
}

/** Whether every drop so far worked. */
export function cachesDropped(): boolean {
  return !warned
}
