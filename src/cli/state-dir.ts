// Where the mount daemon keeps what belongs to this machine: its logs, pid files and the repair
// queue of each volume (~/.local/state/edfs, or $XDG_STATE_HOME/edfs), and the disk cache of each
// volume (~/.cache/edfs/VOLUME, or $XDG_CACHE_HOME/edfs/VOLUME).
import { homedir } from 'node:os'
import path from 'node:path'

export function stateDir(): string {
  const base = process.env.XDG_STATE_HOME || path.join(homedir(), '.local', 'state')
  return path.join(base, 'edfs')
}

/** The blobs a writer on this machine stored degraded, not yet copied home (src/volume/repair-queue.ts). */
export function repairQueueFile(volumeId: string): string {
  return path.join(stateDir(), `repair-${volumeId}.json`)
}

/** The default disk cache of a volume's sealed chunks (src/volume/disk-cache.ts). */
export function diskCacheDir(volumeId: string): string {
  const base = process.env.XDG_CACHE_HOME || path.join(homedir(), '.cache')
  return path.join(base, 'edfs', volumeId)
}
