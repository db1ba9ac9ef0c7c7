// Where the mount daemon keeps what belongs to this machine: its logs, pid files and the repair
// queue of each volume (~/.local/state/edfs, or $XDG_STATE_HOME/edfs).
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
