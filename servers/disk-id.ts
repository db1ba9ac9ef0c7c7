// Which file system a data directory is on, as an opaque id clients compare: servers sharing a disk
// (four on one machine, containers whose volumes sit on one host disk) report the same id, so the
// space is counted once. The machine's boot id (the same inside containers) and the device number,
// hashed so the health answer reveals neither.
import { createHash } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'

export async function diskId(dataDir: string, serverId: string): Promise<string> {
  try {
    const boot = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim()
    const { dev } = await stat(dataDir)
    return createHash('sha256').update(`edfs-disk:${boot}:${dev}`).digest('hex').slice(0, 32)
  } catch {
    return serverId // no boot id (not Linux): a disk of its own
  }
}
