// `edfs quickstart` from a clean state (HOME and the XDG directories in a temp dir): four servers,
// a user, a volume and a mount in one command; a file copied in and read back; `--stop` in teardown
// (and the servers' pids from its state.json killed if anything is left).
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import * as path from 'node:path'
import { runEdfs } from '../helpers/servers'
import { alive, cleanupMount, fuseMountsUnder, withFuse, run, sleep, waitFor } from './support'

withFuse(() => {
  t.test('edfs quickstart from a clean state', async (t) => {
    const home = await mkdtemp(path.join(tmpdir(), 'edfs-e2e-qs-'))
    const env = {
      HOME: home,
      XDG_DATA_HOME: path.join(home, 'data'),
      XDG_CONFIG_HOME: path.join(home, 'config'),
      XDG_STATE_HOME: path.join(home, 'state'),
      EDFS_PASSWORD: '',
      EDFS_CONFIG: '',
    }
    const mnt = path.join(home, 'dfs')
    await mkdir(mnt)
    const qsDir = path.join(home, 'data', 'edfs', 'quickstart')
    t.teardown(async () => {
      const r = await runEdfs(['quickstart', '--stop'], { env, timeoutMs: 120_000 }).catch((e: Error) => ({ code: -1, stderr: e.message, stdout: '' }))
      if (r.code !== 0) t.comment(`quickstart --stop: ${r.code} ${r.stderr}`)
      const state = JSON.parse(await readFile(path.join(qsDir, 'state.json'), 'utf8').catch(() => '{"servers":[]}')) as { servers: { pid: number }[] }
      const pids = state.servers.map((s) => s.pid)
      await waitFor(15_000, async () => !pids.some((p) => alive(p)), 200)
      for (const pid of pids.filter((p) => alive(p))) {
        t.comment(`server pid ${pid} still alive after --stop: SIGKILL`)
        try {
          process.kill(pid, 'SIGKILL')
        } catch {
          /* gone */
        }
      }
      await cleanupMount({ dir: home, cfg: '', env, servers: [], urls: '' }, mnt, 0)
      if (!(await fuseMountsUnder(home)).length) await rm(home, { recursive: true, force: true })
    })

    const started = Date.now()
    const r = await runEdfs(['quickstart', mnt], { env, timeoutMs: 180_000 })
    t.equal(r.code, 0, `edfs quickstart (${Date.now() - started} ms): ${r.stderr}`)
    t.match(r.stdout, /started storage server dfs4/, 'four servers started')
    t.match(r.stdout, /edfs is mounted at/, 'mounted')
    t.match(r.stdout, /edfs quickstart --stop/, 'says how to stop')
    const pw = await stat(path.join(qsDir, 'password'))
    t.equal(pw.mode & 0o777, 0o600, 'generated password saved 0600')
    t.equal((await fuseMountsUnder(mnt)).length, 1, 'the mount is in /proc/mounts')

    const data = randomBytes(5 * 1024 * 1024 + 17)
    await writeFile(path.join(home, 'in.bin'), data)
    const cp = await run('cp', [path.join(home, 'in.bin'), `${mnt}/copied.bin`])
    t.equal(cp.code, 0, `cp in: ${cp.stderr}`)
    const cmp = await run('cmp', [path.join(home, 'in.bin'), `${mnt}/copied.bin`])
    t.equal(cmp.code, 0, 'read back equal')
    const df = await run('df', ['-P', mnt])
    t.match(df.stdout, /edfs/, 'df shows it')

    // Stop and run again: the same servers' data and volume come back.
    const stop = await runEdfs(['quickstart', '--stop'], { env, timeoutMs: 120_000 })
    t.equal(stop.code, 0, `quickstart --stop: ${stop.stderr}`)
    t.same(await fuseMountsUnder(mnt), [], 'unmounted')
    await sleep(500)
    const again = await runEdfs(['quickstart', mnt], { env, timeoutMs: 180_000 })
    t.equal(again.code, 0, `quickstart again: ${again.stderr}`)
    const cmp2 = await run('cmp', [path.join(home, 'in.bin'), `${mnt}/copied.bin`])
    t.equal(cmp2.code, 0, 'the file is still there after --stop and a second quickstart')
  })

  t.test('no mount is left behind', async (t) => {
    const left = (await fuseMountsUnder(tmpdir())).filter((p) => p.includes('edfs-e2e-qs-'))
    t.same(left, [], 'no quickstart mount in /proc/mounts')
  })
})
