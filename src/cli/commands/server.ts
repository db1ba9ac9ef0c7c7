// `edfs server ...`: run a storage server (servers/) and manage its users file.
import { Command, Option } from 'commander'
import { readFileSync, rmSync } from 'node:fs'
import path from 'node:path'
import { AUTH_SCRYPT, isUserName, makeVerifier, parseListenAddress } from '../../protocol'
import {
  DEFAULT_MAX_BLOB_SIZE, DEFAULT_REQUEST_TIMEOUT_MS, DEFAULT_SCRUB_PERIOD_MS, DataDirError, Layout, fromVerifier, readUsersSync, startStorageServer, updateUsers,
} from '../../../servers'
import { UsageError } from '../errors'
import { readPassword } from '../password'
import { parseSize } from '../units'

const VERSION: string = require('../../../../package.json').version

interface RunOptions {
  data: string
  host: string
  port: string
  tlsCert?: string
  tlsKey?: string
  maxBlobSize: string
  requestTimeout: string
  scrubPeriod: string
  metrics?: string
}

interface UserOptions {
  data: string
  passwordStdin?: boolean
  purge?: boolean
}

export function registerServer(program: Command): void {
  const server = program
    .command('server')
    .description('run a storage server, or manage its users (useradd, userdel, passwd)')
    // --data belongs to `server` and is read by its subcommands too (optsWithGlobals), so it may
    // come before or after the subcommand: `edfs server useradd alice --data DIR`.
    .option('--data <dir>', 'data directory (created if missing)')
    .configureHelp({ showGlobalOptions: true })
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0: any free port)', '7001')
    .option('--tls-cert <file>', 'PEM certificate: serve HTTPS (needs --tls-key)')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option('--max-blob-size <size>', 'largest blob accepted', '128MiB')
    .addOption(new Option('--request-timeout <ms>', 'longest silence inside a request body, in ms').default(String(DEFAULT_REQUEST_TIMEOUT_MS)))
    .option('--metrics <[host:]port>', 'serve Prometheus metrics at http://HOST:PORT/metrics (a bare port: 127.0.0.1)')
    .option('--scrub-period <days>', 'check every stored copy against its hash once per this many days, in the background (0: off)', String(DEFAULT_SCRUB_PERIOD_MS / 86_400_000))
    .addHelpText('after', `
Prints one line when ready: "edfs server listening on http://HOST:PORT id=SERVER_ID".
Stops cleanly on SIGINT or SIGTERM. Add users before clients can log in (see useradd).

Examples:
  edfs server useradd alice --data /srv/edfs1
  edfs server --data /srv/edfs1 --port 7001
  edfs server --data /srv/edfs1 --host 0.0.0.0 --tls-cert cert.pem --tls-key key.pem
  edfs server --data /tmp/try --port 0          # any free port
`)
    .action(async (opts: RunOptions) => runServer(opts))

  const userCmd = (name: string, description: string) =>
    server
      .command(name)
      .description(description)
      .argument('<name>', 'user name: a-z, 0-9, ".", "_", "-" (up to 64)')

  userCmd('useradd', 'add a user (password from --password-stdin, EDFS_PASSWORD, or a prompt)')
    .option('--password-stdin', 'read the password from standard input')
    .addHelpText('after', `
Only a salted scrypt verifier is stored (DATA/users.json, mode 0600); a running server picks the
change up at once.

Examples:
  edfs server useradd alice --data /srv/edfs1
  echo "$PASS" | edfs server useradd alice --data /srv/edfs1 --password-stdin
  EDFS_PASSWORD="$PASS" edfs server useradd alice --data /srv/edfs1
`)
    .action(async (name: string, _opts: UserOptions, cmd: Command) => {
      const opts = userOptions(name, cmd)
      const file = new Layout(opts.data).usersFile
      if (readUsersSync(file)[name]) throw new UsageError(`user ${name} already exists (use \`edfs server passwd ${name}\`)`)
      const entry = fromVerifier(await makeVerifier(await readPassword(opts, `Password for ${name}: `, true), AUTH_SCRYPT))
      await updateUsers(file, (users) => {
        if (users[name]) throw new UsageError(`user ${name} already exists`)
        users[name] = entry
      })
      process.stderr.write(`edfs: user ${name} added\n`)
    })

  userCmd('passwd', 'administrator\'s reset of a user\'s login on this server only (not the volume\'s key file: users change their password with `edfs passwd`)')
    .option('--password-stdin', 'read the new password from standard input')
    .addHelpText('after', `
Examples:
  edfs server passwd alice --data /srv/edfs1
  echo "$NEWPASS" | edfs server passwd alice --data /srv/edfs1 --password-stdin
`)
    .action(async (name: string, _opts: UserOptions, cmd: Command) => {
      const opts = userOptions(name, cmd)
      const file = new Layout(opts.data).usersFile
      if (!readUsersSync(file)[name]) throw new UsageError(`no user ${name} in ${file}`)
      const entry = fromVerifier(await makeVerifier(await readPassword(opts, `New password for ${name}: `, true), AUTH_SCRYPT))
      await updateUsers(file, (users) => {
        if (!users[name]) throw new UsageError(`no user ${name} in ${file}`)
        users[name] = entry
      })
      process.stderr.write(
        `edfs: the login password of ${name} on this server changed (their sessions here end).\n` +
          'edfs: not changed: the other servers, and the key file of their volume, which still opens with the old password only.\n' +
          'edfs: to change a volume\'s password, the user runs `edfs passwd` (login on every server and key file together).\n',
      )
    })

  userCmd('userdel', 'remove a user (their data stays unless --purge)')
    .option('--purge', 'also delete the user\'s blobs and records on this server')
    .addHelpText('after', `
Examples:
  edfs server userdel bob --data /srv/edfs1
  edfs server userdel bob --data /srv/edfs1 --purge     # and delete bob's data
`)
    .action(async (name: string, _opts: UserOptions, cmd: Command) => {
      const opts = userOptions(name, cmd)
      const layout = new Layout(opts.data)
      await updateUsers(layout.usersFile, (users) => {
        if (!users[name]) throw new UsageError(`no user ${name} in ${layout.usersFile}`)
        delete users[name]
      })
      if (opts.purge) rmSync(layout.userDir(name), { recursive: true, force: true })
      process.stderr.write(`edfs: user ${name} removed${opts.purge ? ' with their data' : ''}\n`)
    })
}

function userOptions(name: string, cmd: Command): UserOptions {
  checkName(name)
  const opts = cmd.optsWithGlobals<UserOptions>()
  if (!opts.data) throw new UsageError(`--data <dir> is required (the server's data directory)`)
  return opts
}

function checkName(name: string): void {
  if (!isUserName(name)) throw new UsageError(`invalid user name "${name}": use a-z, 0-9, ".", "_", "-" (up to 64, starting with a letter or digit)`)
}

async function runServer(opts: RunOptions): Promise<void> {
  if (!opts.data) throw new UsageError('--data <dir> is required (run `edfs server --help`)')
  const port = Number(opts.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port: not a port number: ${opts.port}`)
  if (!!opts.tlsCert !== !!opts.tlsKey) throw new UsageError('--tls-cert and --tls-key go together')
  let maxBlobSize: number
  try {
    maxBlobSize = parseSize(opts.maxBlobSize)
  } catch (err) {
    throw new UsageError(`--max-blob-size: ${(err as Error).message}`)
  }
  if (maxBlobSize < 1) maxBlobSize = DEFAULT_MAX_BLOB_SIZE
  const requestTimeoutMs = Number(opts.requestTimeout)
  if (!Number.isInteger(requestTimeoutMs) || requestTimeoutMs < 1) throw new UsageError(`--request-timeout: milliseconds, e.g. 60000`)
  const scrubDays = Number(opts.scrubPeriod)
  if (!/^\d+(\.\d+)?$/.test(opts.scrubPeriod) || !Number.isFinite(scrubDays)) throw new UsageError(`--scrub-period: days, e.g. 7 (0: no background scrub)`)
  let metrics: { host: string; port: number } | undefined
  if (opts.metrics !== undefined) {
    try {
      metrics = parseListenAddress(opts.metrics)
    } catch (err) {
      throw new UsageError(`--metrics: ${(err as Error).message}`)
    }
  }
  let tls: { cert: Buffer; key: Buffer } | undefined
  if (opts.tlsCert && opts.tlsKey) {
    try {
      tls = { cert: readFileSync(opts.tlsCert), key: readFileSync(opts.tlsKey) }
    } catch (err) {
      throw new UsageError(`cannot read the TLS files: ${(err as Error).message}`)
    }
  }
  let srv
  try {
    srv = await startStorageServer({
      dataDir: path.resolve(opts.data), host: opts.host, port, tls, maxBlobSize, requestTimeoutMs, scrubPeriodMs: Math.round(scrubDays * 86_400_000), metrics, version: VERSION,
    })
  } catch (err) {
    if (err instanceof DataDirError) throw new UsageError(err.message)
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EADDRINUSE') throw new UsageError(`${opts.host}:${port} is already in use`)
    if (code === 'EADDRNOTAVAIL') throw new UsageError(`cannot listen on ${opts.host}: no such local address`)
    throw err
  }
  process.stdout.write(`edfs server listening on ${srv.url} id=${srv.id}\n`)
  if (srv.metricsUrl) process.stderr.write(`edfs server: metrics on ${srv.metricsUrl}\n`)
  const running = srv
  let stopping = false
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return
    stopping = true
    process.stderr.write(`edfs server: ${signal}: stopping\n`)
    running.close().then(
      () => process.exit(0),
      (err: Error) => {
        process.stderr.write(`edfs server: error while stopping: ${err.message}\n`)
        process.exit(1)
      },
    )
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}
