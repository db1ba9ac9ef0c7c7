// `edfs tls init --names NAME,... [--out DIR]`: a private CA and one server certificate for the
// given host names and addresses, made with openssl (the tool made for it). The servers take
// server.crt/server.key (--tls-cert/--tls-key), clients trust ca.crt (edfs init --ca).
import { execFile } from 'node:child_process'
import { access, chmod, mkdir, rm, writeFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import path from 'node:path'
import { promisify } from 'node:util'
import { Command } from 'commander'
import { UsageError } from '../errors'
import { writeStdout } from '../file-commands'

const run = promisify(execFile)

interface TlsInitOptions {
  names: string
  out: string
  days: string
  force?: boolean
}

export function registerTls(program: Command): void {
  const tls = program.command('tls').description('make TLS certificates for the servers (a private CA)')
  tls
    .command('init')
    .description('make a CA and a server certificate for the servers\' names and addresses')
    .requiredOption('--names <list>', 'comma-separated host names and IP addresses the servers are reached by')
    .option('--out <dir>', 'where to write ca.crt, ca.key, server.crt, server.key', 'certs')
    .option('--days <n>', 'validity in days', '825')
    .option('--force', 'replace certificates that exist')
    .addHelpText('after', `
Keep ca.key offline or delete it once the servers' certificate is made. Then:
  edfs server --data DIR --host 0.0.0.0 --tls-cert certs/server.crt --tls-key certs/server.key
  edfs init --servers https://NAME:7001,... --user alice --ca certs/ca.crt

Examples:
  edfs tls init --names dfs1,dfs2,dfs3,dfs4,localhost,127.0.0.1
  edfs tls init --names storage.example.net,10.0.0.5 --out /etc/edfs/tls`)
    .action((opts: TlsInitOptions) => tlsInit(opts))
}

async function tlsInit(opts: TlsInitOptions): Promise<void> {
  const names = opts.names.split(',').map((n) => n.trim()).filter(Boolean)
  if (names.length === 0) throw new UsageError('--names: at least one host name or address')
  for (const n of names) if (!isIP(n) && !/^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(n)) throw new UsageError(`--names: not a host name or IP address: ${n}`)
  const days = Number(opts.days)
  if (!Number.isInteger(days) || days < 1 || days > 3650) throw new UsageError('--days: 1 to 3650')
  const out = path.resolve(opts.out)
  const file = (n: string) => path.join(out, n)
  if (!opts.force) {
    for (const n of ['ca.crt', 'server.crt', 'server.key']) {
      if (await access(file(n)).then(() => true, () => false)) throw new UsageError(`${file(n)} exists (use --force to replace it)`)
    }
  }
  try {
    await run('openssl', ['version'])
  } catch {
    throw new UsageError('openssl is needed to make certificates (apt-get install openssl)')
  }
  await mkdir(out, { recursive: true, mode: 0o755 })
  const san = names.map((n) => `${isIP(n) ? 'IP' : 'DNS'}:${n}`).join(',')
  const ext = file('server.ext')
  await writeFile(ext, `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`)
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  try {
    await run('openssl', ['req', '-x509', ...ec, '-keyout', file('ca.key'), '-out', file('ca.crt'), '-days', String(days), '-subj', '/CN=edfs private CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
    await run('openssl', ['req', ...ec, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', `/CN=${names[0]}`])
    await run('openssl', ['x509', '-req', '-in', file('server.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial',
      '-out', file('server.crt'), '-days', String(days), '-extfile', ext])
  } catch (err) {
    throw new UsageError(`openssl failed: ${((err as { stderr?: string }).stderr ?? (err as Error).message).trim()}`)
  } finally {
    await rm(ext, { force: true })
    await rm(file('server.csr'), { force: true })
    await rm(file('ca.srl'), { force: true })
  }
  await chmod(file('ca.key'), 0o600)
  await chmod(file('server.key'), 0o600)
  await writeStdout(
    `made ${file('ca.crt')} (the CA: give it to clients, edfs init --ca), ${file('server.crt')} and ${file('server.key')} (for ${names.join(', ')}),\n` +
      `and ${file('ca.key')} (signs more certificates: keep it offline, or delete it)\n`,
  )
}
