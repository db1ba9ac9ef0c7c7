// `edfs init`: create the user's volume on the servers, or attach to the one they already hold.
import { constants } from 'node:fs'
import { access } from 'node:fs/promises'
import path from 'node:path'
import { Command } from 'commander'
import { DEFAULT_TIMEOUT_MS, replicationProblem } from '../../cluster'
import { createKeyFile, serializeKeyFile } from '../../crypto'
import { KEYFILE_RECORD, Volume, fetchKeyFiles, readMembership, readVolumeHead, unlock, unlockAny } from '../../volume'
import { ClientConfig, configPath, keyFilePath, memberArg, saveConfig, writePrivateFile } from '../config'
import { UsageError } from '../errors'
import { readPassword } from '../password'
import { parseSize } from '../../protocol'
import { connect } from '../volume-open'

interface InitOptions {
  servers?: string
  discover?: boolean
  discoverWait: string
  user: string
  replicas?: string
  writeQuorum: string
  chunkSize: string
  timeout: string
  ca?: string
  config?: string
  force?: boolean
  passwordStdin?: boolean
}

export function registerInit(program: Command): void {
  program
    .command('init')
    .description("create this user's volume on the servers, or attach to the one they already hold")
    .option('--servers <urls>', 'comma-separated member URLs: edfs servers (http[s]://HOST:PORT) and S3 buckets (s3://BUCKET/PREFIX?endpoint=URL, docs/s3.md)')
    .option('--discover', 'also use the edfs servers found on the LAN over mDNS (`edfs server --advertise`); --servers win')
    .option('--discover-wait <seconds>', 'how long --discover listens', '3')
    .requiredOption('--user <name>', 'user name on the servers')
    .option('--replicas <n>', 'copies of each chunk (a new volume only; default 2, or 1 with a single member such as one S3 bucket)')
    .option('--write-quorum <n>', 'copies a write needs to succeed when servers are down', '1')
    .option('--chunk-size <size>', 'chunk size (a new volume only)', '4MiB')
    .option('--timeout <ms>', 'timeout of each server call in milliseconds', String(DEFAULT_TIMEOUT_MS))
    .option('--ca <file>', 'PEM certificate of a CA to trust for https servers')
    .option('--config <file>', 'config file to write (default: $EDFS_CONFIG or ~/.config/edfs/config.json)')
    .option('--force', 'overwrite an existing config file')
    .option('--password-stdin', 'read the password from standard input')
    .addHelpText('after', `
The password authenticates you to every server and also unlocks the volume's key. It comes from
--password-stdin, else $EDFS_PASSWORD, else a prompt. S3 members take no password: their
credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws/credentials or profile=.

Examples:
  edfs init --servers http://10.0.0.1:7001,http://10.0.0.2:7001,http://10.0.0.3:7001,http://10.0.0.4:7001 --user alice
  echo "$PW" | edfs init --servers https://dfs1:7001,https://dfs2:7001 --user alice --ca ca.pem --password-stdin
  edfs init --servers 's3://my-bucket/edfs?endpoint=http://127.0.0.1:7480&path-style=1' --user alice
      # one S3 bucket, R = 1 (the store keeps its own copies); credentials from AWS_* or ~/.aws
  edfs init --discover --user alice             # the servers this LAN announces
On a second machine the same command attaches to the existing volume.`)
    .action((opts: InitOptions) => init(opts))
}

async function init(opts: InitOptions): Promise<void> {
  const file = configPath(opts.config)
  if (!opts.force && (await exists(file))) throw new UsageError(`config ${file} exists already (use --force to replace it)`)
  if (opts.servers === undefined && !opts.discover) throw new UsageError('say where the servers are: --servers URL,... or --discover (mDNS on the LAN)')
  let urls = (opts.servers ?? '').split(',').map((u) => u.trim()).filter(Boolean)
  if (opts.servers !== undefined && urls.length === 0) throw new UsageError('--servers needs at least one URL')
  urls = urls.map(memberArg)
  const ca = await caFile(opts.ca)
  if (opts.discover) {
    const wait = Number(opts.discoverWait)
    if (!(wait > 0 && wait <= 60)) throw new UsageError(`--discover-wait: seconds, 0 < s <= 60 (got "${opts.discoverWait}")`)
    const { withDiscovered } = await import('../discover') // mDNS's modules only when asked for
    urls = await withDiscovered(urls, { waitMs: Math.round(wait * 1000), ca, log: (line) => process.stderr.write(`${line}\n`) })
    if (urls.length === 0) throw new UsageError('no edfs server found on the LAN (started with --advertise and --host 0.0.0.0? multicast allowed between here and there?); or name them: --servers URL,...')
  }
  const replicas = opts.replicas === undefined ? Math.min(2, Math.max(1, urls.length)) : positiveInt(opts.replicas, '--replicas')
  const writeQuorum = positiveInt(opts.writeQuorum, '--write-quorum')
  checkReplication(replicas, writeQuorum)
  const chunkSize = parseSize(opts.chunkSize)
  if (chunkSize < 64 * 1024 || chunkSize > 64 * 1024 * 1024) throw new UsageError('--chunk-size must be between 64KiB and 64MiB')
  const password = await readPassword(opts, 'Password: ')

  const config: ClientConfig = {
    format: 'edfs-config', version: 1, user: opts.user, servers: urls.map((url) => ({ url })),
    replicas, writeQuorum, timeoutMs: positiveInt(opts.timeout, '--timeout'), ca, volumeId: '', chunkSize,
  }
  // Attaching may start from a single server (the volume's list names the rest): connect with what fits.
  const fits = Math.min(replicas, urls.length)
  const cluster = await connect({ ...config, replicas: fits, writeQuorum: Math.min(writeQuorum, fits) }, password, (line) => process.stderr.write(`${line}\n`))
  try {
    const down = cluster.members().filter((m) => !m.up)
    if (down.length === cluster.members().length) throw new UsageError(`no server answers: ${urls.join(', ')}`)
    for (const m of down) process.stderr.write(`warning: ${m.url} does not answer now\n`)
    config.servers = cluster.members().map((m) => ({ url: m.url, id: m.id }))

    const existing = await fetchKeyFiles(cluster)
    let keyFile
    if (existing.length > 0) {
      const found = await unlockAny(existing, password)
      keyFile = found.keyFile
      const keys = found.keys
      // The volume's own server list: one reachable server is enough to find all of them.
      const members = await readMembership(cluster, keys)
      if (members) {
        await cluster.setMembers(members.servers)
        config.servers = members.servers.map((s) => ({ url: s.url, id: s.id }))
      }
      const head = await readVolumeHead(cluster, keys)
      if (!head) throw new UsageError('the servers hold a key file but no volume head: the volume is damaged (see `edfs status`)')
      // The head decides R; the write quorum asked for must fit it (the servers given may be fewer:
      // one server is enough to attach).
      checkReplication(head.replicas, writeQuorum)
      Object.assign(config, { volumeId: head.volumeId, chunkSize: head.chunkSize, replicas: head.replicas })
      process.stdout.write(`attached to volume ${head.volumeId} (replicas ${head.replicas}, chunk size ${head.chunkSize} bytes)\n`)
    } else {
      checkReplication(replicas, writeQuorum, urls.length)
      const created = await createKeyFile(password)
      keyFile = created.keyFile
      const value = serializeKeyFile(keyFile)
      const up = cluster.members().filter((m) => m.up && m.id)
      await Promise.all(up.map((m) => cluster.casRecord(m.id!, KEYFILE_RECORD, 0, value)))
      config.volumeId = keyFile.volumeId
      await Volume.create(cluster, await unlock(keyFile, password), {
        volumeId: keyFile.volumeId, chunkSize, replicas, uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0,
      })
      process.stdout.write(`created volume ${keyFile.volumeId} on ${up.length} servers (replicas ${replicas}, chunk size ${chunkSize} bytes)\n`)
    }
    await writePrivateFile(keyFilePath(file), serializeKeyFile(keyFile).toString('utf8'))
    await saveConfig(file, config)
    process.stdout.write(`config written to ${file}\n`)
  } finally {
    cluster.close()
  }
}

/** --replicas and --write-quorum as the cluster checks them, in the flags' names. */
function checkReplication(replicas: number, writeQuorum: number, servers?: number): void {
  const problem = replicationProblem(replicas, writeQuorum, servers)
  if (problem) throw new UsageError(`--replicas ${replicas} --write-quorum ${writeQuorum}: ${problem}`)
}

/** --ca as an absolute path (the config is read from anywhere later), checked readable now. */
async function caFile(ca: string | undefined): Promise<string | undefined> {
  if (ca === undefined) return undefined
  const file = path.resolve(ca)
  try {
    await access(file, constants.R_OK)
  } catch (err) {
    throw new UsageError(`--ca ${ca}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
  }
  return file
}

function positiveInt(text: string, flag: string): number {
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer (got "${text}")`)
  return n
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false)
}

