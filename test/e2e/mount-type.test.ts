// edfs as a file system type: `mount -t fuse.edfs CONFIG MNT -o ...` and an fstab line (a temporary
// fstab, `mount -T`) mount through the helper mount(8) looks for, /sbin/mount.fuse.edfs (a link
// to edfs, as docs/mount.md says to make; the test makes it and removes it), with mount.fuse's
// calling convention; a plain `umount` flushes and commits (the data is there at the next mount);
// bad options are refused by name. The shipped systemd units pass `systemd-analyze verify`.
import t from 'tap'
import { access, chmod, copyFile, mkdir, mkdtemp, readFile, symlink, unlink, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { daemonFiles } from '../../src/cli/daemon-files'
import { EDFS_BIN, TEST_USER } from '../helpers/servers'
import { fuseMountsUnder, withFuse, makeVolume, run, shell, waitFor } from './support'

const ROOT = path.resolve(__dirname, '../../..')

withFuse(() => {
  t.test('mount -t fuse.edfs, fstab, umount', async (t) => {
    const vol = await makeVolume(t)
    const helper = '/sbin/mount.fuse.edfs'
    const hadHelper = await access(helper).then(() => true, () => false)
    if (!hadHelper) {
      await symlink(EDFS_BIN, helper)
      t.teardown(() => unlink(helper).catch(() => undefined))
    }
    const pw = path.join(vol.dir, 'password')
    await writeFile(pw, `${TEST_USER.password}\n`, { mode: 0o600 })
    const mnt = path.join(vol.dir, 'mnt')
    await mkdir(mnt)
    const env = { XDG_STATE_HOME: vol.env.XDG_STATE_HOME!, XDG_CACHE_HOME: vol.env.XDG_CACHE_HOME! }
    process.env.XDG_STATE_HOME = vol.env.XDG_STATE_HOME // daemonFiles() below looks there
    const pidFile = daemonFiles(mnt).pid
    t.teardown(async () => {
      if ((await fuseMountsUnder(mnt)).length) await run('fusermount', ['-u', '-z', mnt])
    })
    const gone = () => waitFor(60_000, async () => access(pidFile).then(() => false, () => true), 100)

    const m = await run('mount', ['-t', 'fuse.edfs', vol.cfg, mnt, '-o', `password_file=${pw},_netdev,nofail,allow_other`], { env, timeoutMs: 150_000 })
    t.equal(m.code, 0, `mount -t fuse.edfs: ${m.stderr}`)
    t.equal((await shell(`echo through mount.fuse > ${mnt}/f && cat ${mnt}/f`)).stdout, 'through mount.fuse\n')
    const u = await run('umount', [mnt])
    t.equal(u.code, 0, `plain umount: ${u.stderr}`)
    t.ok(await gone(), 'the daemon flushed, committed and exited')

    const fstab = path.join(vol.dir, 'fstab')
    await writeFile(fstab, `# a test fstab\n${vol.cfg} ${mnt} fuse.edfs password_file=${pw},ro,_netdev,nofail 0 0\n`)
    const f = await run('mount', ['-T', fstab, mnt], { env, timeoutMs: 150_000 })
    t.equal(f.code, 0, `mount -T fstab: ${f.stderr}`)
    t.equal(await readFile(path.join(mnt, 'f'), 'utf8'), 'through mount.fuse\n', 'what was written before the plain umount is there')
    t.not((await shell(`touch ${mnt}/g`)).code, 0, 'ro from the fstab line: read-only')
    t.equal((await run('fusermount', ['-u', mnt])).code, 0, 'fusermount -u')
    t.ok(await gone(), 'the daemon exited')

    const bad = await run('mount', ['-t', 'fuse.edfs', vol.cfg, mnt, '-o', `password_file=${pw},turbo`], { env, timeoutMs: 60_000 })
    t.not(bad.code, 0)
    t.match(bad.stderr + bad.stdout, /unknown mount option "turbo"/)
    const nopw = await run('mount', ['-t', 'fuse.edfs', vol.cfg, mnt, '-o', `password_file=${vol.dir}/nope`], { env, timeoutMs: 60_000 })
    t.match(nopw.stderr + nopw.stdout, /password_file=.*nope: ENOENT/)
    t.same(await fuseMountsUnder(mnt), [], 'nothing left mounted')
  })
})

t.test('the systemd units pass systemd-analyze verify', async (t) => {
  const has = await run('systemd-analyze', ['--version'])
  if (has.code !== 0) {
    if (process.env.CI) t.fail('systemd-analyze is missing on CI')
    else t.pass('systemd-analyze is not installed here')
    return
  }
  const dir = await mkdtemp('/tmp/edfs-units-')
  for (const [unit, as] of [['edfs-server@.service', 'edfs-server@dfs1.service'], ['edfs-mount.service', 'edfs-mount.service']] as const) {
    const target = path.join(dir, as)
    await copyFile(path.join(ROOT, 'systemd', unit), target)
    // The units name the installed path; point them at this checkout so the check finds the program.
    await writeFile(target, (await readFile(target, 'utf8')).replaceAll('/usr/local/bin/edfs', EDFS_BIN))
    await chmod(target, 0o644)
  }
  const v = await run('systemd-analyze', ['verify', path.join(dir, 'edfs-server@dfs1.service'), path.join(dir, 'edfs-mount.service')])
  t.equal(v.code, 0, `systemd-analyze verify: ${v.stderr}${v.stdout}`)
  t.equal(v.stderr.trim(), '', 'no warnings')
})
