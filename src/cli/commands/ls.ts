// `edfs ls [-l] [-R] [PATH]`: list a directory of the volume (read-only: no lease). Files whose chunks
// are not all on some live server are marked `unreadable`; with fewer live copies than R, `degraded`.
import { Command } from 'commander'
import { chunkBlobs, Inode, joinPath, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFSOCK } from '../../volume'
import { CommonOptions, remotePath, withCommonOptions, withVolume, writeStdout } from '../file-commands'
import { formatSize } from '../../protocol'
import { OpenVolume } from '../volume-open'

interface LsOptions extends CommonOptions {
  long?: boolean
  recursive?: boolean
  human?: boolean
}

export type FileHealth = 'ok' | 'degraded' | 'unreadable'

export function registerLs(program: Command): void {
  withCommonOptions(
    program
      .command('ls')
      .description('list a directory of the volume; marks files with missing chunks unreadable, with too few copies degraded')
      .argument('[path]', 'directory or file in the volume', '/'),
  )
    .option('-l, --long', 'long format: mode, links, owner, group, size, modification time')
    .option('-R, --recursive', 'list subdirectories recursively')
    .option('-H, --human', 'sizes as KiB, MiB, ... (with -l)')
    .addHelpText('after', `
Marks: "unreadable" - some chunk of the file is on no server that answers now (reading it fails);
"degraded" - every chunk is readable, but some has fewer live copies than the replication factor.

Examples:
  edfs ls
  edfs ls -l /photos
  edfs ls -lR /`)
    .action((path: string, opts: LsOptions) => ls(path, opts))
}

async function ls(pathArg: string, opts: LsOptions): Promise<void> {
  const path = remotePath(pathArg)
  await withVolume(opts, true, async (volume) => {
    const node = volume.namespace.resolve(path)
    // Which directories to show, and which entries in each.
    const sections: { title: string; entries: { name: string; node: Inode }[] }[] = []
    if (node.kind !== 'dir') sections.push({ title: '', entries: [{ name: pathArg, node }] })
    else {
      const walk = (dir: Inode, dirPath: string) => {
        const entries = [...dir.entries!].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).flatMap(([name, id]) => {
          const child = volume.namespace.get(id)
          return child ? [{ name, node: child }] : []
        })
        sections.push({ title: dirPath, entries })
        if (opts.recursive) for (const e of entries) if (e.node.kind === 'dir') walk(e.node, joinPath(dirPath, e.name))
      }
      walk(node, path)
    }
    const health = await fileHealth(volume, sections.flatMap((s) => s.entries.map((e) => e.node)))
    const out: string[] = []
    sections.forEach((section, k) => {
      if (opts.recursive) {
        if (k > 0) out.push('')
        out.push(`${section.title}:`)
      }
      out.push(...(opts.long ? longLines(volume, section.entries, health, !!opts.human) : section.entries.map((e) => mark(e.name, health.get(e.node.id)))))
    })
    if (out.length > 0) await writeStdout(`${out.join('\n')}\n`)
  })
}

function mark(text: string, h: FileHealth | undefined): string {
  return h && h !== 'ok' ? `${text}  [${h}]` : text
}

/** The health of each file: one batched locate over all their chunks. */
export async function fileHealth(volume: OpenVolume, nodes: Iterable<Inode>): Promise<Map<string, FileHealth>> {
  const files = [...nodes].filter((n) => n.kind === 'file')
  const ids = new Set<string>()
  for (const f of files) for (const { ref } of chunkBlobs(f)) ids.add(ref.id)
  const out = new Map<string, FileHealth>()
  if (ids.size === 0) return out
  const where = await volume.session.cluster.locate([...ids])
  const r = volume.head.replicas
  for (const f of files) {
    let h: FileHealth = 'ok'
    for (const { ref } of chunkBlobs(f)) {
      const copies = where.get(ref.id)?.length ?? 0
      if (copies === 0) {
        h = 'unreadable'
        break
      }
      if (copies < r) h = 'degraded'
    }
    out.set(f.id, h)
  }
  return out
}

function longLines(volume: OpenVolume, entries: { name: string; node: Inode }[], health: Map<string, FileHealth>, human: boolean): string[] {
  const rows = entries.map(({ name, node }) => {
    const a = volume.attrOf(node)
    return {
      mode: modeString(a.mode),
      nlink: String(a.nlink),
      uid: String(a.uid),
      gid: String(a.gid),
      size: human ? formatSize(a.size).replace(' ', '') : String(a.size),
      time: formatTime(a.mtimeMs),
      name: mark(node.kind === 'symlink' ? `${name} -> ${node.target}` : name, health.get(node.id)),
    }
  })
  const w = (k: 'nlink' | 'uid' | 'gid' | 'size') => Math.max(0, ...rows.map((r) => r[k].length))
  const [wl, wu, wg, ws] = [w('nlink'), w('uid'), w('gid'), w('size')]
  return rows.map((r) => `${r.mode} ${r.nlink.padStart(wl)} ${r.uid.padEnd(wu)} ${r.gid.padEnd(wg)} ${r.size.padStart(ws)} ${r.time} ${r.name}`)
}

/** ls's first letter of the mode, by file type. */
const TYPE_CHARS: Record<number, string> = { [S_IFDIR]: 'd', [S_IFLNK]: 'l', [S_IFIFO]: 'p', [S_IFSOCK]: 's', [S_IFCHR]: 'c', [S_IFBLK]: 'b' }

export function modeString(mode: number): string {
  const type = TYPE_CHARS[mode & S_IFMT] ?? '-'
  const rwx = (bits: number) => `${bits & 4 ? 'r' : '-'}${bits & 2 ? 'w' : '-'}${bits & 1 ? 'x' : '-'}`
  let s = `${type}${rwx(mode >> 6)}${rwx(mode >> 3)}${rwx(mode)}`
  const chars = s.split('')
  if (mode & 0o4000) chars[3] = chars[3] === 'x' ? 's' : 'S'
  if (mode & 0o2000) chars[6] = chars[6] === 'x' ? 's' : 'S'
  if (mode & 0o1000) chars[9] = chars[9] === 'x' ? 't' : 'T'
  s = chars.join('')
  return s
}

function formatTime(ms: number): string {
  const d = new Date(ms)
  const p = (n: number) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`
}
