// A global install from the package tarball (npm pack of the built tree, then npm install -g into a temporary
// prefix) puts a working `edfs` on PATH, with the patched FUSE binding built: the installed command
// runs a server, creates a volume, mounts it, writes and reads a file, and unmounts.
import t from 'tap'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { TEST_USER } from '../helpers/servers'
import { withFuse, run, shell, waitFor } from './support'

const ROOT = path.resolve(__dirname, '../../..')

withFuse(() => {
  t.test('npm install -g from the tarball', async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'edfs-install-'))
    const prefix = path.join(dir, 'prefix')
    const pack = await run('npm', ['pack', '--pack-destination', dir, '--silent', '--ignore-scripts'], { cwd: ROOT, timeoutMs: 240_000 })
    t.equal(pack.code, 0, `npm pack: ${pack.stderr.slice(-500)}`)
    const tarball = path.join(dir, pack.stdout.trim().split('\n').pop()!)
    const install = await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tarball], { timeoutMs: 480_000 })
    t.equal(install.code, 0, `npm install -g: ${install.stderr.slice(-1000)}`)
    const edfs = path.join(prefix, 'bin', 'edfs')
    const env = { PATH: `${path.join(prefix, 'bin')}:${process.env.PATH}`, EDFS_PASSWORD: TEST_USER.password, XDG_STATE_HOME: path.join(dir, 'state'), XDG_CACHE_HOME: path.join(dir, 'cache') }
    const version = await run('edfs', ['--version'], { env })
    t.equal(version.stdout.trim(), JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')).version, '`edfs` is on PATH and runs')

    const data = path.join(dir, 'data')
    t.equal((await run(edfs, ['server', 'useradd', TEST_USER.name, '--data', data], { env })).code, 0)
    const log = path.join(dir, 'server.log')
    const server = await shell(`setsid ${edfs} server --data ${data} --port 0 > ${log} 2>&1 & echo $!`)
    const pid = Number(server.stdout.trim())
    t.teardown(async () => {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        /* gone */
      }
    })
    t.ok(await waitFor(20_000, async () => /listening on/.test(await readFile(log, 'utf8').catch(() => ''))), 'the installed server starts')
    const url = /listening on (\S+)/.exec(await readFile(log, 'utf8'))![1]!
    const cfg = path.join(dir, 'config.json')
    t.equal((await run(edfs, ['init', '--servers', url, '--user', TEST_USER.name, '--replicas', '1', '--config', cfg], { env })).code, 0)
    const mnt = path.join(dir, 'mnt')
    await shell(`mkdir -p ${mnt}`)
    const mount = await run(edfs, ['mount', mnt, '--config', cfg], { env, timeoutMs: 120_000 })
    t.equal(mount.code, 0, `the installed edfs mounts (patched binding built at install): ${mount.stderr}`)
    t.teardown(async () => {
      await run(edfs, ['umount', mnt], { env, timeoutMs: 60_000 })
      await rm(dir, { recursive: true, force: true })
    })
    t.equal((await shell(`echo installed > ${mnt}/f && cat ${mnt}/f`)).stdout, 'installed\n')
    t.equal((await run(edfs, ['umount', mnt], { env, timeoutMs: 60_000 })).code, 0)
  })
})
