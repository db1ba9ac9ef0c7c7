// The mount(8) calling convention: `mount -t fuse.edfs CONFIG /mnt/dfs -o OPTS` (and the fstab line
// `CONFIG /mnt/dfs fuse.edfs OPTS 0 0`) makes mount.fuse run `edfs CONFIG /mnt/dfs -o OPTS`. This
// turns that into `edfs mount /mnt/dfs --config CONFIG ...`, mapping the -o options.
import { readFile } from 'node:fs/promises'
import { UsageError } from './errors'

/** Options mount(8), systemd or mount.fuse handle themselves, or that mean nothing here. */
const IGNORED = new Set(['defaults', 'rw', 'suid', 'nosuid', 'dev', 'nodev', 'exec', 'noexec', 'auto', 'noauto', 'user', 'nouser', 'users',
  '_netdev', 'nofail', 'atime', 'noatime', 'relatime', 'strictatime', 'async', 'sync', 'dirsync', 'lazytime', 'nodiratime'])

/** Our own -o options: name -> the mount flag (true: a flag without a value). */
const OPTIONS: Record<string, { flag: string; value: boolean }> = {
  ro: { flag: '--read-only', value: false },
  allow_other: { flag: '--allow-other', value: false },
  sync_close: { flag: '--sync-close', value: false },
  cache_size: { flag: '--cache-size', value: true },
  cache_dir: { flag: '--cache-dir', value: true },
  disk_cache_size: { flag: '--disk-cache-size', value: true },
  commit_interval: { flag: '--commit-interval', value: true },
  metrics: { flag: '--metrics', value: true },
}

export const MOUNT_OPTIONS_HELP = `-o options (mount -t fuse.edfs, fstab): ro, allow_other, sync_close, cache_size=SIZE,
cache_dir=DIR, disk_cache_size=SIZE, commit_interval=SECONDS, metrics=[HOST:]PORT, password_file=FILE (the password, read at mount
time; else $EDFS_PASSWORD). mount's own options (_netdev, nofail, noauto, defaults, ...) are ignored.`

/**
 * `SOURCE MOUNTPOINT [-o OPTS]` (after node and the script) -> the `edfs mount` argv, or null when
 * argv is an ordinary edfs command line. Reads password_file into EDFS_PASSWORD.
 */
export async function fromMountHelper(argv: string[], commands: Set<string>): Promise<string[] | null> {
  const args = argv.slice(2)
  const [source, mountPoint] = args
  if (!source || !mountPoint || source.startsWith('-') || commands.has(source) || mountPoint.startsWith('-')) return null
  const rest = args.slice(2)
  const opts: string[] = []
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '-o' && rest[i + 1] !== undefined) opts.push(...rest[++i]!.split(',').filter(Boolean))
    else throw new UsageError(`edfs as a mount helper takes CONFIG MOUNTPOINT [-o OPTIONS], not "${rest[i]}"\n${MOUNT_OPTIONS_HELP}`)
  }
  const out = [argv[0]!, argv[1]!, 'mount', mountPoint, '--config', source]
  for (const opt of opts) {
    const eq = opt.indexOf('=')
    const name = eq < 0 ? opt : opt.slice(0, eq)
    const value = eq < 0 ? undefined : opt.slice(eq + 1)
    if (IGNORED.has(name) || name.startsWith('x-') || name === 'comment') continue
    if (name === 'password_file') {
      if (!value) throw new UsageError('password_file=FILE: a file name is needed')
      try {
        process.env.EDFS_PASSWORD = (await readFile(value, 'utf8')).replace(/\r?\n$/, '')
      } catch (err) {
        throw new UsageError(`password_file=${value}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
      }
      continue
    }
    const known = OPTIONS[name]
    if (!known) throw new UsageError(`unknown mount option "${name}"\n${MOUNT_OPTIONS_HELP}`)
    if (known.value !== (value !== undefined)) throw new UsageError(`mount option ${name} ${known.value ? 'needs =VALUE' : 'takes no value'}`)
    out.push(known.flag, ...(value !== undefined ? [value] : []))
  }
  return out
}
