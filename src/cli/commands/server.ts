// `edfs server ...`: run a storage server (servers/) and manage its users file.
import { Command } from 'commander'
import { readFileSync, rmSync } from 'node:fs'
import { AUTH_SCRYPT, isUserName, makeVerifier } from '../../protocol'
import { DataDirError, Layout } from '../../../servers/layout'
import { addUser, fromVerifier, readUsersSync, updateUsers } from '../../../servers/users'
import { UsageError } from '../errors'
import { readPassword } from '../password'
import { ServerRunOptions, addServerOptions, parseServerOptions } from '../server-options'

const VERSION: string = require('../../../../package.json').version

interface UserOptions {
  data: string
  passwordStdin?: boolean
  purge?: boolean
}

export function registerServer(program: Command): void {
  // --data belongs to `server` and is read by its subcommands too (optsWithGlobals), so it may
  // come before or after the subcommand: `edfs server useradd alice --data DIR`.
  const server = addServerOptions(
    program
      .command('server')
      .description('run a storage server, or manage its users (useradd, userdel, passwd)')
      .configureHelp({ showGlobalOptions: true }),
  )
    .addHelpText('after', `
Prints one line when ready: "edfs server listening on http://HOST:PORT id=SERVER_ID".
Stops cleanly on SIGINT or SIGTERM. Add users before clients can log in (see useradd).

Examples:
  edfs server useradd alice --data /srv/edfs1
  edfs server --data /srv/edfs1 --port 7001
  edfs server --data /srv/edfs1 --host 0.0.0.0 --tls-cert cert.pem --tls-key key.pem
  edfs server --data /tmp/try --port 0          # any free port
  edfs server --data /srv/edfs1 --host 0.0.0.0 --advertise   # found by \`edfs init --discover\`
Every option, with its default: docs/server.md.
`)
    .action(async (opts: Record<string, unknown>) => runServer(parseServerOptions(opts)))

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
      const verifier = await makeVerifier(await readPassword(opts, `Password for ${name}: `, true), AUTH_SCRYPT)
      if (!(await addUser(file, name, verifier))) throw new UsageError(`user ${name} already exists`)
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

async function runServer(opts: ServerRunOptions): Promise<void> {
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
    // Loaded here: the server's modules (prom-client, mDNS) cost every other command their load time.
    const { startStorageServer } = await import('../../../servers')
    srv = await startStorageServer({
      dataDir: opts.data, host: opts.host, port: opts.port, tls, maxBlobSize: opts.maxBlobSize, requestTimeoutMs: opts.requestTimeout, scrubPeriodMs: opts.scrubPeriod, metrics: opts.metrics, version: VERSION,
      advertise: opts.advertise === undefined ? undefined : { name: opts.advertise === true ? undefined : opts.advertise },
    })
  } catch (err) {
    if (err instanceof DataDirError) throw new UsageError(err.message)
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EADDRINUSE') throw new UsageError(`${opts.host}:${opts.port} is already in use`)
    if (code === 'EADDRNOTAVAIL') throw new UsageError(`cannot listen on ${opts.host}: no such local address`)
    throw err
  }
  process.stdout.write(`edfs server listening on ${srv.url} id=${srv.id}\n`)
  if (srv.metricsUrl) process.stderr.write(`edfs server: metrics on ${srv.metricsUrl}\n`)
  if (srv.advertisedAs) process.stderr.write(`edfs server: advertised over mDNS: "${srv.advertisedAs}" (_edfs._tcp)\n`)
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
