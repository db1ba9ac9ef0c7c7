// `edfs put LOCAL... REMOTE`: copy local files and directories into the volume, following `cp -r`'s
// rules for the destination. Everything is checked before the first byte is written; files stream in
// 1 MiB blocks, several at a time; each file is committed when it is complete, so an interrupted put
// leaves whole files only (the file in flight is removed).
import { Stats } from 'node:fs'
import { chmod, copyFile, lstat, mkdir, open, readdir, readlink, stat, symlink, unlink } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { Command } from 'commander'
import { checkName, Inode, joinPath, O_TRUNC, O_WRONLY } from '../../volume'
import { mountError, onMount } from '../beside-mount'
import { UsageError } from '../errors'
import { checkAborted, lookup, remotePath, withCommonOptions, withVolume } from '../file-commands'
import { Progress, summary } from '../progress'
import { FILES_IN_FLIGHT, IO_BLOCK, TransferOptions, describeStat, runPool } from '../transfer'
import { OpenVolume } from '../volume-open'

type Item =
  | { kind: 'dir'; local: string; remote: string; mode: number; existed: boolean }
  | { kind: 'file'; local: string; remote: string; mode: number; size: number; existed: boolean }
  | { kind: 'symlink'; local: string; remote: string; existed: boolean }
type FileItem = Extract<Item, { kind: 'file' }>

export function registerPut(program: Command): void {
  withCommonOptions(
    program
      .command('put')
      .description('copy local files and directories into the volume (recursive, like cp -r)')
      .usage('[options] LOCAL... REMOTE')
      .argument('<paths...>', 'local files or directories, then the remote destination'),
  )
    .option('-f, --force', 'overwrite files that exist in the volume (directories are merged)')
    .option('-q, --quiet', 'no progress bar')
    .addHelpText('after', `
Destination rules are those of cp -r: when REMOTE is an existing directory, each LOCAL is copied
inside it under its own name; otherwise the single LOCAL is copied to the new name REMOTE. A
destination that exists already is refused unless --force is given. Symbolic links inside a
directory are copied as links; links named on the command line are followed.

Examples:
  edfs put report.pdf /docs                  # -> /docs/report.pdf (when /docs is a directory)
  edfs put photos /backup/photos-2024        # a directory, recursively, under a new name
  edfs put a.txt b.txt notes/ /inbox         # several sources into one directory
  edfs put --force report.pdf /docs/report.pdf`)
    .action((paths: string[], opts: TransferOptions) => put(paths, opts))
}

async function put(paths: string[], opts: TransferOptions): Promise<void> {
  if (paths.length < 2) throw new UsageError('put needs at least one LOCAL path and a REMOTE destination (see edfs put --help)')
  const sources = paths.slice(0, -1)
  const dest = remotePath(paths[paths.length - 1]!)
  // The local side first: a missing or unreadable source fails before the password and the servers.
  const local = await statSources(sources)
  await withVolume(opts, false, async (volume, signal) => {
    const items = await plan(volume, local, dest, !!opts.force)
    const files = items.filter((i): i is FileItem => i.kind === 'file')
    const total = files.reduce((n, f) => n + f.size, 0)
    const progress = new Progress('put', total, files.length, opts.quiet)
    try {
      const uid = process.getuid?.() ?? 0
      const gid = process.getgid?.() ?? 0
      for (const item of items) {
        checkAborted(signal)
        if (item.kind === 'dir' && !item.existed) await volume.mkdir(item.remote, item.mode, uid, gid)
        if (item.kind === 'symlink') {
          if (item.existed) await volume.unlink(item.remote)
          await volume.symlink(await readlink(item.local), item.remote, uid, gid)
        }
      }
      const buffers: Buffer[] = []
      const finisher = new Finisher(volume, progress)
      try {
        await runPool(files, FILES_IN_FLIGHT, signal, async (file) => {
          const buf = buffers.pop() ?? Buffer.allocUnsafe(IO_BLOCK)
          let fh: number
          try {
            fh = await putFile(volume, file, buf, uid, gid, progress, signal)
          } finally {
            buffers.push(buf)
          }
          await finisher.add(file, fh, file.size >= volume.chunkSize)
        })
      } finally {
        await finisher.flushAll()
      }
    } finally {
      progress.finish()
    }
    if (!opts.quiet && process.stderr.isTTY) process.stderr.write(`put ${files.length} file(s), ${summary(progress.bytes, progress.seconds)}\n`)
  }, { cacheBytes: 160 * 1024 * 1024, maxDirtyBytes: 128 * 1024 * 1024, maxUploads: 16 }, async (mount, volume, signal) => {
    // The same plan and checks; the writes go through the mount.
    const items = await plan(volume, local, dest, !!opts.force)
    const files = items.filter((i): i is FileItem => i.kind === 'file')
    const progress = new Progress('put', files.reduce((n, f) => n + f.size, 0), files.length, opts.quiet)
    try {
      for (const item of items) {
        checkAborted(signal)
        const there = onMount(mount, item.remote)
        const done = (p: Promise<unknown>) => p.catch((err) => Promise.reject(mountError(err, item.remote)))
        if (item.kind === 'dir' && !item.existed) await done(mkdir(there, { mode: item.mode }))
        if (item.kind === 'symlink') {
          if (item.existed) await done(unlink(there))
          await done(symlink(await readlink(item.local), there))
        }
      }
      await runPool(files, FILES_IN_FLIGHT, signal, async (file) => {
        await copyFile(file.local, onMount(mount, file.remote)).catch((err) => Promise.reject(mountError(err, file.remote)))
        await chmod(onMount(mount, file.remote), file.mode)
        progress.add(file.size)
        progress.fileDone()
      })
    } finally {
      progress.finish()
    }
  })
}

/** Walks the sources and decides every remote name; refuses conflicts before anything is written. */
/** The sources as named on the command line (links followed), each one a file, directory or link. */
async function statSources(sources: string[]): Promise<{ src: string; st: Stats }[]> {
  const out: { src: string; st: Stats }[] = []
  for (const src of sources) {
    let st: Stats
    try {
      st = await stat(src)
    } catch (err) {
      throw new UsageError(`cannot put ${src}: ${localReason(err)}`)
    }
    checkPuttable(src, st)
    out.push({ src, st })
  }
  return out
}

async function plan(volume: OpenVolume, sources: { src: string; st: Stats }[], dest: string, force: boolean): Promise<Item[]> {
  const destNode = lookup(volume, dest)
  const intoDir = destNode?.kind === 'dir'
  if (sources.length > 1 && !intoDir) {
    throw new UsageError(destNode ? `target ${dest} is not a directory` : `target directory ${dest} does not exist`)
  }
  const items: Item[] = []
  for (const { src, st } of sources) {
    let target = dest
    if (intoDir) {
      const name = basename(resolve(src))
      if (name === '') throw new UsageError(`cannot put ${src}: give a directory below / or copy its contents`)
      checkLocalName(src, name)
      target = joinPath(dest, name)
    }
    const existing = intoDir ? lookup(volume, target) : destNode
    if (existing && !force) throw new UsageError(`${target} already exists in the volume (use --force to overwrite)`)
    await addTree(volume, src, st, target, existing, items)
  }
  return items
}

async function addTree(volume: OpenVolume, local: string, st: Stats, remote: string, existing: Inode | undefined, items: Item[]): Promise<void> {
  if (existing) {
    if (existing.kind === 'dir' && !st.isDirectory()) throw new UsageError(`cannot overwrite directory ${remote} with non-directory ${local}`)
    if (existing.kind !== 'dir' && st.isDirectory()) throw new UsageError(`cannot overwrite non-directory ${remote} with directory ${local}`)
  }
  if (st.isSymbolicLink()) {
    items.push({ kind: 'symlink', local, remote, existed: !!existing })
    return
  }
  if (st.isFile()) {
    items.push({ kind: 'file', local, remote, mode: st.mode & 0o7777, size: st.size, existed: !!existing })
    return
  }
  items.push({ kind: 'dir', local, remote, mode: st.mode & 0o7777, existed: !!existing })
  let names: string[]
  try {
    names = (await readdir(local)).sort()
  } catch (err) {
    throw new UsageError(`cannot read directory ${local}: ${localReason(err)}`)
  }
  for (const name of names) {
    const child = join(local, name)
    checkLocalName(child, name)
    let cst: Stats
    try {
      cst = await lstat(child)
    } catch (err) {
      throw new UsageError(`cannot put ${child}: ${localReason(err)}`)
    }
    checkPuttable(child, cst)
    const childRemote = joinPath(remote, name)
    await addTree(volume, child, cst, childRemote, existing ? lookup(volume, childRemote) : undefined, items)
  }
}

function checkPuttable(path: string, st: Stats): void {
  if (st.isFile() || st.isDirectory() || st.isSymbolicLink()) return
  throw new UsageError(`cannot put ${path}: it is a ${describeStat(st)}; only regular files, directories and symbolic links can be put`)
}

function checkLocalName(path: string, name: string): void {
  try {
    checkName(name)
  } catch (err) {
    throw new UsageError(`cannot put ${path}: ${(err as Error).message.replace(/^E[A-Z]+: /, '')}`)
  }
}

/** Streams the local file into the volume; returns the open (unflushed) handle. */
async function putFile(volume: OpenVolume, file: FileItem, buf: Buffer, uid: number, gid: number, progress: Progress, signal: AbortSignal): Promise<number> {
  let local
  try {
    local = await open(file.local, 'r')
  } catch (err) {
    throw new UsageError(`cannot read ${file.local}: ${localReason(err)}`)
  }
  let fh: number | undefined
  try {
    fh = await volume.create(file.remote, file.mode, uid, gid, O_WRONLY | O_TRUNC)
    for (let pos = 0; ; ) {
      checkAborted(signal)
      let n: number
      try {
        n = (await local.read(buf, 0, buf.length, pos)).bytesRead
      } catch (err) {
        throw new UsageError(`cannot read ${file.local}: ${localReason(err)}`)
      }
      if (n === 0) break
      await volume.write(fh, buf, n, pos)
      pos += n
      progress.add(n)
    }
  } catch (err) {
    if (fh !== undefined) await discard(volume, file, fh)
    throw putError(file, err)
  } finally {
    await local.close().catch(() => undefined)
  }
  return fh
}

/** Never leaves a partial file under the real name: a new file goes away (a replaced one is reported). */
async function discard(volume: OpenVolume, file: FileItem, fh: number): Promise<void> {
  if (!file.existed) await volume.unlink(file.remote).catch(() => undefined)
  await volume.release(fh).catch(() => undefined)
}

function putError(file: FileItem, err: unknown): Error {
  if (err instanceof UsageError) return err
  const note = file.existed ? ` (${file.remote} was being overwritten and is now incomplete)` : ''
  return new UsageError(`put ${file.local} -> ${file.remote}: ${(err as Error).message}${note}`)
}

/**
 * Flushes written files in batches: each flush stores the file's data and commits, and flushes that
 * run together share one commit (group commit), so a tree of small files costs a few commits per
 * batch instead of one per file. A large file is flushed at once. Errors surface per file.
 */
class Finisher {
  private batch: { file: FileItem; fh: number }[] = []
  private failure: Error | null = null

  constructor(private readonly volume: OpenVolume, private readonly progress: Progress, private readonly batchSize = 64) {}

  async add(file: FileItem, fh: number, now: boolean): Promise<void> {
    if (now) return this.finish([{ file, fh }])
    this.batch.push({ file, fh })
    if (this.batch.length >= this.batchSize) await this.flushAll()
  }

  async flushAll(): Promise<void> {
    const batch = this.batch
    this.batch = []
    await this.finish(batch)
  }

  private async finish(batch: { file: FileItem; fh: number }[]): Promise<void> {
    await Promise.all(
      batch.map(async ({ file, fh }) => {
        try {
          await this.volume.flush(fh)
        } catch (err) {
          await discard(this.volume, file, fh)
          this.failure ??= putError(file, err)
          return
        }
        await this.volume.release(fh)
        this.progress.fileDone()
      }),
    )
    if (this.failure) throw this.failure
  }
}

export function localReason(err: unknown): string {
  const e = err as NodeJS.ErrnoException
  switch (e.code) {
    case 'ENOENT': return 'no such file or directory'
    case 'EACCES': return 'permission denied'
    case 'EISDIR': return 'is a directory'
    case 'ENOTDIR': return 'not a directory'
    case 'ELOOP': return 'too many levels of symbolic links'
    default: return e.code ? `${e.code}: ${e.message.replace(/^[A-Z]+: /, '')}` : e.message
  }
}
