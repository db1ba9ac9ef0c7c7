// `edfs quickstart`: a complete local system in one command — four storage servers on loopback,
// a user, a volume (2 replicas) and a mount. Run again, it reuses the same servers and data.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, open, readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { Command } from 'commander'
import { Layout } from '../../../servers/layout'
import { addUser } from '../../../servers/users'
import { findFuseMount, probeMountPoint } from '../../fuse/mount-points'
import { Verifier, makeVerifier } from '../../protocol'
import { writePrivateFile } from '../config'
import { UsageError } from '../errors'
import { EDFS_BIN, runSelf } from '../self'
import { setTimeout as sleep } from 'node:timers/promises'

const SERVERS = 4
const USER = 'quickstart'

interface State {
  mountpoint: string
  servers: { name: string; url: string; pid: number }[]
}

function stateDir(): string {
  return join(process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share'), 'edfs', 'quickstart')
}

export function registerQuickstart(program: Command): void {
  program
    .command('quickstart')
    .argument('[mountpoint]', 'where to mount', '/mnt/dfs')
    .description('start 4 local storage servers, create a user and a volume, and mount it (all local)')
    .option('--stop', 'unmount and stop the quickstart servers (data is kept)')
    .addHelpText('after', `
Data lives under ~/.local/share/edfs/quickstart (servers dfs1..dfs4, config, generated password).
Examples:
  edfs quickstart              # mount at /mnt/dfs
  edfs quickstart ~/dfs        # mount elsewhere
  edfs quickstart --stop       # unmount and stop the servers`)
    .action((mountpoint: string, opts: { stop?: boolean }) => (opts.stop ? stop() : start(mountpoint)))
}

async function start(mountpoint: string): Promise<void> {
  const dir = stateDir()
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const passwordFile = join(dir, 'password')
  const password = await readFile(passwordFile, 'utf8').catch(async () => {
    const fresh = randomBytes(18).toString('base64url')
    await writePrivateFile(passwordFile, fresh)
    return fresh
  })
  const previous = await loadState(dir)
  // One verifier on all four (one machine, one trust domain): a login to all of them derives the
  // password's keys once (cluster/login-keys.ts), not four times.
  let verifier: Promise<Verifier> | null = null
  const servers: State['servers'] = []
  for (let i = 1; i <= SERVERS; i++) {
    const name = `dfs${i}`
    const data = join(dir, name)
    const known = previous?.servers.find((s) => s.name === name)
    if (known && (await answers(known.url))) {
      servers.push(known)
      continue
    }
    const usersFile = new Layout(data).usersFile
    if (!(await exists(usersFile))) await addUser(usersFile, USER, await (verifier ??= makeVerifier(password)))
    const port = known ? new URL(known.url).port : '0'
    servers.push({ name, ...(await startServer(data, port, join(dir, `${name}.log`))) })
    process.stdout.write(`started storage server ${name} at ${servers[servers.length - 1]!.url}\n`)
  }
  await writePrivateFile(join(dir, 'state.json'), JSON.stringify({ mountpoint, servers } satisfies State, null, 2))

  const config = join(dir, 'config.json')
  const env = { EDFS_PASSWORD: password, EDFS_CONFIG: config }
  if (!(await exists(config))) {
    await runSelf(['init', '--servers', servers.map((s) => s.url).join(','), '--user', USER, '--replicas', '2'], env)
  }
  await mkdir(mountpoint, { recursive: true })
  if ((await findFuseMount(mountpoint))?.type === 'fuse.edfs' && (await probeMountPoint(mountpoint)) === 'ok') {
    process.stdout.write(`${mountpoint} is already mounted\n`)
  } else await runSelf(['mount', mountpoint], env, 'inherit')
  const edfs = process.env.PATH?.split(':').some((d) => d && EDFS_BIN === join(d, 'edfs')) ? 'edfs' : EDFS_BIN
  process.stdout.write(`
edfs is mounted at ${mountpoint}: 4 servers, every chunk stored twice, encrypted on this machine.
  cp -r ~/somedir ${mountpoint}/        ls -l ${mountpoint}        df -h ${mountpoint}
The file commands work too:
  EDFS_CONFIG=${config} EDFS_PASSWORD=$(cat ${passwordFile}) ${edfs} status
Stop everything:  ${edfs} quickstart --stop      (data stays in ${dir}; run quickstart again to resume)
`)
}

async function stop(): Promise<void> {
  const dir = stateDir()
  const state = await loadState(dir)
  if (!state) throw new UsageError(`no quickstart state in ${dir}: nothing to stop`)
  if (await findFuseMount(state.mountpoint)) {
    await runSelf(['umount', state.mountpoint], { EDFS_CONFIG: join(dir, 'config.json') }, 'inherit').catch((err) =>
      process.stderr.write(`edfs: ${(err as Error).message}\n`),
    )
  }
  for (const s of state.servers) {
    try {
      process.kill(s.pid, 'SIGTERM')
      process.stdout.write(`stopped ${s.name} (pid ${s.pid})\n`)
    } catch {
      // already gone
    }
  }
}

/** Starts a detached server writing to its log file, and waits for its ready line there. */
async function startServer(data: string, port: string, logFile: string): Promise<{ url: string; pid: number }> {
  const log = await open(logFile, 'a')
  const offset = (await log.stat()).size
  const child = spawn(process.execPath, [EDFS_BIN, 'server', '--data', data, '--host', '127.0.0.1', '--port', port], {
    detached: true,
    stdio: ['ignore', log.fd, log.fd],
  })
  await log.close()
  let exited: number | null | undefined
  child.on('exit', (code) => (exited = code))
  child.unref()
  for (let waited = 0; waited < 15_000; waited += 100) {
    const text = (await readFile(logFile, 'utf8')).slice(offset)
    const m = /listening on (\S+)/.exec(text)
    if (m) return { url: m[1]!, pid: child.pid! }
    if (exited !== undefined) throw new UsageError(`server for ${data} exited with code ${exited}: ${text.trim().split('\n').pop()}`)
    await sleep(100)
  }
  throw new UsageError(`server for ${data} did not start within 15 s (see ${logFile})`)
}

async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/v1/health`, { signal: AbortSignal.timeout(2000) })
    return res.ok
  } catch {
    return false
  }
}

async function loadState(dir: string): Promise<State | null> {
  try {
    return JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as State
  } catch {
    return null
  }
}

async function exists(path: string): Promise<boolean> {
  return open(path, 'r').then((h) => (h.close(), true), () => false)
}
