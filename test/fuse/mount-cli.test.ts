// `edfs mount` / `edfs umount` end to end: two real servers on loopback, `edfs init`, a background
// mount (the daemon is a detached child of the CLI), ordinary programs on it, umount (flush, commit),
// a remount that sees the data, a non-empty mount point refused, and a daemon killed with SIGKILL
// whose stale mount the next mount or umount clears.
import t from 'tap'
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import * as path from 'node:path'
import { EDFS_BIN, NODE_FLAGS } from '../../src/cli/self'
import { TEST_USER, runEdfs, startServers } from '../helpers/servers'
import { fuseMountsUnder, withFuse, run } from './fixtures/harness'

withFuse(() => {
  t.test('edfs mount and umount', async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'edfs-mountcli-'))
    const mnt = path.join(dir, 'mnt')
    await mkdir(mnt)
    const state = path.join(dir, 'state')
    const env = { XDG_STATE_HOME: state, XDG_CACHE_HOME: path.join(dir, 'cache') }
    const cfg = path.join(dir, 'config.json')
    const pw = { input: `${TEST_USER.password}\n`, env, timeoutMs: 60_000 }
    t.teardown(async () => {
      // Last resort: a daemon still running (found by pid file) and the mount.
      for (const f of await readdir(path.join(state, 'edfs')).catch(() => [] as string[])) {
        if (!f.endsWith('.pid')) continue
        const pid = Number(await readFile(path.join(state, 'edfs', f), 'utf8').catch(() => '0'))
        if (pid > 0) try { process.kill(pid, 'SIGKILL') } catch { /* gone */ }
      }
      if ((await fuseMountsUnder(mnt)).length) await run('fusermount', ['-uz', mnt])
      if (!(await fuseMountsUnder(dir)).length) await rm(dir, { recursive: true, force: true })
    })

    const servers = await startServers(t, 2)
    let r = await runEdfs(['init', '--servers', servers.map((s) => s.url).join(','), '--user', TEST_USER.name, '--config', cfg, '--password-stdin'], pw)
    t.equal(r.code, 0, `init: ${r.stderr}`)

    // A mount point with files in it: refused up front, saying why; the files stay visible.
    await writeFile(path.join(mnt, 'keep.txt'), 'mine\n')
    r = await runEdfs(['mount', mnt, '--config', cfg, '--password-stdin'], pw)
    t.equal(r.code, 1, 'a non-empty mount point is refused')
    t.match(r.stderr, /^edfs: .*mnt is not empty \(it holds keep\.txt, \.\.\.\)/m)
    t.same(await fuseMountsUnder(mnt), [], 'nothing mounted')
    t.equal(await readFile(path.join(mnt, 'keep.txt'), 'utf8'), 'mine\n', 'the file is untouched')
    await rm(path.join(mnt, 'keep.txt'))

    r = await runEdfs(['mount', mnt, '--config', cfg, '--password-stdin'], pw)
    t.equal(r.code, 0, `mount: ${r.stderr}`)
    t.match(r.stdout, /mounted .* \(daemon pid (\d+), log .*\.log\)/)
    const pid = Number(/daemon pid (\d+)/.exec(r.stdout)?.[1])
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')
    t.notOk(argv.includes(TEST_USER.password), 'the password is not in the daemon\'s argv')
    for (const flag of NODE_FLAGS) t.ok(argv.includes(flag), `the daemon runs with ${flag}`)
    const shebang = (await readFile(EDFS_BIN, 'utf8')).split('\n')[0]
    t.equal(shebang, `#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`, 'and so does an installed edfs (bin/edfs\'s shebang)')
    const environ = await readFile(`/proc/${pid}/environ`, 'utf8')
    t.notOk(environ.includes(TEST_USER.password), 'nor in its environment')

    t.equal((await run('sh', ['-c', `mkdir ${mnt}/d && echo hello > ${mnt}/d/f && dd if=/dev/urandom of=${mnt}/d/big bs=1M count=6 2>/dev/null && cp ${mnt}/d/big ${dir}/big.copy`])).code, 0)
    t.equal((await run('cat', [`${mnt}/d/f`])).stdout, 'hello\n')

    r = await runEdfs(['mount', mnt, '--config', cfg, '--password-stdin'], pw)
    t.not(r.code, 0, 'a second mount on the same point is refused')
    t.match(r.stderr, /already/)

    r = await runEdfs(['umount', mnt], { env, timeoutMs: 120_000 })
    t.equal(r.code, 0, `umount: ${r.stderr}`)
    t.same(await fuseMountsUnder(mnt), [], 'unmounted')
    t.same((await readdir(path.join(state, 'edfs'))).filter((f) => f.endsWith('.pid')), [], 'the pid file is gone')

    r = await runEdfs(['mount', mnt, '--config', cfg, '--password-stdin', '--read-only'], pw)
    t.equal(r.code, 0, `read-only remount: ${r.stderr}`)
    t.equal((await run('cat', [`${mnt}/d/f`])).stdout, 'hello\n', 'the data survived the remount')
    t.equal((await run('cmp', [`${mnt}/d/big`, `${dir}/big.copy`])).code, 0, '6 MiB file intact')
    t.match((await run('touch', [`${mnt}/x`])).stderr, /read-only/i, 'read-only mount')

    // A crashed daemon: SIGKILL leaves a stale mount, which umount clears.
    const pid2 = Number(/daemon pid (\d+)/.exec(r.stdout)?.[1])
    process.kill(pid2, 'SIGKILL')
    await new Promise((res) => setTimeout(res, 300))
    t.match((await run('ls', [mnt])).stderr, /not connected/, 'stale mount after SIGKILL')
    r = await runEdfs(['umount', mnt], { env })
    t.equal(r.code, 0, `umount of a stale mount: ${r.stderr}`)
    t.match(r.stdout, /no daemon/)
    t.same(await fuseMountsUnder(mnt), [])

    // And mount clears one by itself (read-only: a killed writer's lease would have to expire).
    r = await runEdfs(['mount', mnt, '--config', cfg, '--password-stdin', '--read-only'], pw)
    t.equal(r.code, 0)
    process.kill(Number(/daemon pid (\d+)/.exec(r.stdout)?.[1]), 'SIGKILL')
    await new Promise((res) => setTimeout(res, 300))
    r = await runEdfs(['mount', mnt, '--config', cfg, '--password-stdin', '--read-only'], pw)
    t.equal(r.code, 0, `mount over a stale mount: ${r.stderr}`)
    t.match(r.stderr, /stale/)
    t.equal((await run('cat', [`${mnt}/d/f`])).stdout, 'hello\n')
    r = await runEdfs(['umount', mnt], { env })
    t.equal(r.code, 0)

    r = await runEdfs(['mount', mnt, '--config', cfg, '--password-stdin'], { ...pw, input: 'wrong\n' })
    t.equal(r.code, 1, 'a wrong password fails the mount')
    t.match(r.stderr, /wrong user name or password|refused/)
    t.notMatch(r.stderr, /^\s+at /m, 'one clear message, no stack trace')
    t.same(await fuseMountsUnder(dir), [], 'nothing left mounted')
  })
})
