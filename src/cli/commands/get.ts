// `edfs get REMOTE LOCAL`: copy a file or a directory tree out of the volume, following `cp -r`'s
// rules for the destination. Each file is written to a temporary name next to its target and
// renamed at the end, so a failed or interrupted get never leaves a partial file under a real name.
import { randomBytes } from 'node:crypto'
import { Stats } from 'node:fs'
import { lstat, mkdir, open, rename, rm, stat, symlink } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { Command } from 'commander'
import { checkName, chunkBlobs, FsError, Inode, joinPath, O_RDONLY, S_IFBLK, S_IFCHR, S_IFIFO, S_IFMT, S_IFSOCK } from '../../volume'
import { UsageError } from '../errors'
import { checkAborted, remoteBasename, remotePath, withCommonOptions, withVolume } from '../file-commands'
import { Progress, summary } from '../progress'
import { FILES_IN_FLIGHT, IO_BLOCK, TransferOptions, runPool } from '../transfer'
import { OpenVolume } from '../volume-open'
import { localReason } from './put'

type Item =
  | { kind: 'dir'; remote: string; local: string; mode: number; existed: boolean }
  | { kind: 'file'; remote: string; local: string; mode: number; size: number; node: Inode }
  | { kind: 'symlink'; remote: string; local: string; target: string; existed: boolean }

export function registerGet(program: Command): void {
  withCommonOptions(
    program
      .command('get')
      .description('copy a file or a directory (recursively) out of the volume, like cp -r')
      .argument('<remote>', 'file or directory in the volume')
      .argument('<local>', 'local destination'),
  )
    .option('-f, --force', 'overwrite local files that exist (directories are merged)')
    .option('-q, --quiet', 'no progress bar')
    .addHelpText('after', `
Destination rules are those of cp -r: when LOCAL is an existing directory, REMOTE is copied inside
it under its own name; otherwise REMOTE is copied to the new name LOCAL. A destination that exists
already is refused unless --force is given. Files are written under a temporary name and renamed
when complete; if a chunk cannot be read from any server, get fails, names the chunks and servers,
and leaves no partial file.

Examples:
  edfs get /docs/report.pdf .                # -> ./report.pdf
  edfs get /photos ~/restore/photos          # a directory, recursively
  edfs get --force /docs/report.pdf report.pdf`)
    .action((remote: string, local: string, opts: TransferOptions) => get(remote, local, opts))
}

async function get(remoteArg: string, localArg: string, opts: TransferOptions): Promise<void> {
  const remote = remotePath(remoteArg)
  await withVolume(opts, true, async (volume, signal) => {
    const items = await plan(volume, remote, localArg, !!opts.force)
    const files = items.filter((i): i is Extract<Item, { kind: 'file' }> => i.kind === 'file')
    const total = files.reduce((n, f) => n + f.size, 0)
    const progress = new Progress('get', total, files.length, opts.quiet)
    try {
      for (const item of items) {
        checkAborted(signal)
        if (item.kind === 'dir' && !item.existed) {
          await mkdir(item.local, { mode: item.mode & 0o7777 }).catch((err) => {
            throw new UsageError(`cannot create directory ${item.local}: ${localReason(err)}`)
          })
        }
        if (item.kind === 'symlink') {
          if (item.existed) await rm(item.local, { force: true })
          await symlink(item.target, item.local).catch((err) => {
            throw new UsageError(`cannot create symbolic link ${item.local}: ${localReason(err)}`)
          })
        }
      }
      const buffers: Buffer[] = []
      await runPool(files, FILES_IN_FLIGHT, signal, async (file) => {
        const buf = buffers.pop() ?? Buffer.allocUnsafe(IO_BLOCK)
        try {
          await getFile(volume, file, buf, progress, signal)
        } finally {
          buffers.push(buf)
        }
        progress.fileDone()
      })
    } finally {
      progress.finish()
    }
    if (!opts.quiet && process.stderr.isTTY) process.stderr.write(`got ${files.length} file(s), ${summary(progress.bytes, progress.seconds)}\n`)
  }, { cacheBytes: 256 * 1024 * 1024 })
}

async function statOrNull(path: string): Promise<Stats | null> {
  try {
    return await lstat(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
    throw new UsageError(`cannot use ${path}: ${localReason(err)}`)
  }
}

async function plan(volume: OpenVolume, remote: string, localArg: string, force: boolean): Promise<Item[]> {
  const node = volume.namespace.resolve(remote)
  const destStat = await statOrNull(localArg)
  let target = localArg
  let existing = destStat
  const destIsDir = destStat?.isDirectory() || (destStat?.isSymbolicLink() && (await isDirectoryFollowing(localArg)))
  if (destIsDir && remote !== '/') {
    target = join(localArg, remoteBasename(remote))
    existing = await statOrNull(target)
  } else if (!destStat) {
    const parent = await statOrNull(dirname(localArg) || '.')
    if (!parent) throw new UsageError(`cannot create ${localArg}: directory ${dirname(localArg)} does not exist`)
  }
  if (existing && !force) {
    throw new UsageError(`${target} already exists${existing.isDirectory() ? ' (a directory)' : ''}; use --force to overwrite${existing.isDirectory() ? ' and merge' : ''}`)
  }
  const items: Item[] = []
  addTree(volume, node, remote, target, existing, items)
  for (const item of items) {
    if (item.local !== target) {
      const st = await statOrNull(item.local)
      if (st) checkType(item, st)
      if (item.kind !== 'file') item.existed = !!st
    }
  }
  return items
}

async function isDirectoryFollowing(path: string): Promise<boolean> {
  return stat(path).then((s) => s.isDirectory(), () => false)
}

function checkType(item: Item, st: Stats): void {
  if (item.kind === 'dir' && !st.isDirectory()) throw new UsageError(`cannot overwrite non-directory ${item.local} with directory ${item.remote}`)
  if (item.kind !== 'dir' && st.isDirectory()) throw new UsageError(`cannot overwrite directory ${item.local} with non-directory ${item.remote}`)
}

function specialName(mode: number): string {
  const names: Record<number, string> = { [S_IFIFO]: 'FIFO', [S_IFSOCK]: 'socket', [S_IFCHR]: 'character device', [S_IFBLK]: 'block device' }
  return names[mode & S_IFMT] ?? 'special file'
}

/** The remote tree, parents before children. Names from the volume are checked before they touch the local disk. */
function addTree(volume: OpenVolume, node: Inode, remote: string, local: string, existing: Stats | null, items: Item[]): void {
  if (node.kind === 'file') {
    const item: Item = { kind: 'file', remote, local, mode: node.mode & 0o7777, size: volume.attrOf(node).size, node }
    if (existing) checkType(item, existing)
    items.push(item)
    return
  }
  if (node.kind === 'special') {
    const what = specialName(node.mode)
    if (items.length === 0) throw new UsageError(`${remote} is a ${what}: get copies files, directories and symbolic links`)
    process.stderr.write(`edfs get: skipping ${remote}: a ${what} (special files are not copied)\n`)
    return
  }
  if (node.kind === 'symlink') {
    const item: Item = { kind: 'symlink', remote, local, target: node.target ?? '', existed: !!existing }
    if (existing) checkType(item, existing)
    items.push(item)
    return
  }
  const item: Item = { kind: 'dir', remote, local, mode: node.mode & 0o7777, existed: !!existing }
  if (existing) checkType(item, existing)
  items.push(item)
  const names = [...node.entries!.keys()].sort()
  for (const name of names) {
    try {
      checkName(name)
      if (name === '.') throw new Error("'.' as a name")
    } catch (err) {
      throw new UsageError(`refusing the name ${JSON.stringify(name)} in ${remote}: ${(err as Error).message}`)
    }
    const child = volume.namespace.lookup(node, name)
    if (!child) continue
    addTree(volume, child, joinPath(remote, name), join(local, name), null, items)
  }
}

async function getFile(volume: OpenVolume, file: Extract<Item, { kind: 'file' }>, buf: Buffer, progress: Progress, signal: AbortSignal): Promise<void> {
  const tmp = join(dirname(file.local), `.edfs-get-${randomBytes(6).toString('hex')}.part`)
  let out
  try {
    out = await open(tmp, 'wx', file.mode & 0o777)
  } catch (err) {
    throw new UsageError(`cannot write in ${dirname(file.local)}: ${localReason(err)}`)
  }
  let fh: number | undefined
  let done = false
  try {
    fh = await volume.open(file.remote, O_RDONLY)
    for (let pos = 0; ; ) {
      checkAborted(signal)
      const n = await volume.read(fh, buf, buf.length, pos)
      if (n === 0) break
      for (let off = 0; off < n; ) off += (await out.write(buf, off, n - off, pos + off)).bytesWritten
      pos += n
      progress.add(n)
    }
    await out.close()
    out = null
    await rename(tmp, file.local)
    done = true
  } catch (err) {
    if (err instanceof FsError && err.code === 'EIO') throw new UsageError(`get ${file.remote}: ${err.message}${await missingChunks(volume, file.node)}`)
    if (err instanceof UsageError) throw err
    throw new UsageError(`get ${file.remote} -> ${file.local}: ${(err as Error).message}`)
  } finally {
    if (out) await out.close().catch(() => undefined)
    if (!done) await rm(tmp, { force: true }).catch(() => undefined)
    if (fh !== undefined) await volume.release(fh).catch(() => undefined)
  }
}

/** "; missing chunks: a (index 3), b (index 4)" for the chunks no live server holds. */
async function missingChunks(volume: OpenVolume, node: Inode): Promise<string> {
  try {
    const refs = chunkBlobs(node)
    const where = await volume.session.cluster.locate(refs.map((x) => x.ref.id))
    const missing = refs.filter((x) => (where.get(x.ref.id) ?? []).length === 0)
    if (missing.length === 0) return ''
    const shown = missing.slice(0, 10).map((x) => `${x.ref.id} (chunk ${x.index})`).join(', ')
    const more = missing.length > 10 ? ` and ${missing.length - 10} more` : ''
    const down = volume.session.cluster.members().filter((m) => !m.up).map((m) => m.url)
    return `; ${missing.length} of ${refs.length} chunks are on no live server: ${shown}${more}${down.length ? `; servers down: ${down.join(', ')}` : ''}`
  } catch {
    return ''
  }
}
