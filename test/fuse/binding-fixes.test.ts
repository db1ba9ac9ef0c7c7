// The fixes in our patched fuse-native, checked through a real mount of the in-memory file system
// (the daemon runs in a child process): 128 KiB writes (big_writes), utimens passing mtime, fsync
// receiving the right handle, the per-operation timeout, and new files owned by their creator.
import t from 'tap'
import { checkPatch } from '../../src/fuse/binding'
import { withFuse, leftoverMounts, run, startMemoryMount } from './fixtures/harness'

withFuse(() => {
  t.test('the patched binding is installed', async (t) => {
    t.equal(checkPatch(), null, 'fuse-native carries the edfs patch in JS and in the native addon')
  })

  t.test('binding fixes through a real mount', async (t) => {
    const m = await startMemoryMount()
    t.teardown(() => m.stop())

    t.test('big_writes: writes arrive 128 KiB at a time', async (t) => {
      const started = process.hrtime.bigint()
      const dd = await run('dd', ['if=/dev/zero', `of=${m.mnt}/big`, 'bs=1M', 'count=64'])
      const seconds = Number(process.hrtime.bigint() - started) / 1e9
      t.equal(dd.code, 0, dd.stderr)
      const s = await m.stats()
      t.equal(s.bytesWritten, 64 << 20, 'every byte reached the file system')
      t.ok(s.maxWrite >= 128 * 1024, `largest write ${s.maxWrite} bytes (>= 128 KiB)`)
      t.ok(s.writes <= (64 << 20) / (128 * 1024) + 8, `${s.writes} write calls for 64 MiB (not 16384)`)
      t.comment(`dd of 64 MiB to the memory mount: ${(64 / seconds).toFixed(0)} MiB/s, write sizes ${JSON.stringify(s.writeSizes)}`)
      const st = await run('stat', ['-c', '%s', `${m.mnt}/big`])
      t.equal(st.stdout.trim(), String(64 << 20))
      const cmp = await run('cmp', ['-n', String(64 << 20), `${m.mnt}/big`, '/dev/zero'])
      t.equal(cmp.code, 0, 'reads back as written')
    })

    t.test('utimens: mtime is not lost', async (t) => {
      const f = `${m.mnt}/times`
      t.equal((await run('sh', ['-c', `echo x > ${f}`])).code, 0)
      let r = await run('touch', ['-d', '2001-02-03 04:05:06', f])
      t.equal(r.code, 0, r.stderr)
      r = await run('stat', ['-c', '%Y %X', f])
      t.equal(r.stdout.trim(), '981173106 981173106', 'touch -d sets mtime and atime')

      // Distinct times: the shipped binding gave the file system atime for both.
      r = await run('python3', ['-c', `import os; os.utime(${JSON.stringify(f)}, ns=(946684800123000000, 1234567890456000000))`])
      t.equal(r.code, 0, r.stderr)
      r = await run('stat', ['-c', '%.3Y %.3X', f])
      t.equal(r.stdout.trim(), '1234567890.456 946684800.123', 'mtime and atime both kept, to the ms')
      const s = await m.stats()
      const last = s.utimens[s.utimens.length - 1]
      t.same(last, { path: '/times', atimeMs: 946684800123, mtimeMs: 1234567890456 }, 'the file system got both')

      // touch without a time (the kernel sends "now" for both).
      const before = Date.now()
      r = await run('touch', [f])
      r = await run('stat', ['-c', '%Y', f])
      t.ok(Number(r.stdout) >= Math.floor(before / 1000) - 1, `touch sets the current time (${r.stdout.trim()})`)
    })

    t.test('utimens of one time only (touch -a / touch -m)', { todo: 'libfuse 2.9 high-level API drops a setattr that changes only atime or only mtime (it calls utimens only with both): touch -a/-m succeed without effect' }, async (t) => {
      const f = `${m.mnt}/times`
      await run('touch', ['-d', '2001-02-03 04:05:06', f])
      await run('touch', ['-a', '-d', '1999-01-01 00:00:00', f])
      const r = await run('stat', ['-c', '%Y %X', f])
      t.equal(r.stdout.trim(), '981173106 915148800', 'atime changed alone')
    })

    t.test('fsync reaches the file system with the file handle', async (t) => {
      const f = `${m.mnt}/synced`
      const py = `import os; fd=os.open(${JSON.stringify(f)}, os.O_CREAT|os.O_WRONLY, 0o644); os.write(fd, b'hello'); os.fsync(fd); os.fdatasync(fd); os.close(fd)`
      const r = await run('python3', ['-c', py])
      t.equal(r.code, 0, r.stderr)
      const s = await m.stats()
      const mine = s.fsyncs.filter((x) => x.path === '/synced')
      t.equal(mine.length, 2, `fsync and fdatasync each reached the file system with a live handle: ${JSON.stringify(s.fsyncs)}`)
      for (const x of mine) t.equal(s.handles[x.fh], '/synced', `handle ${x.fh} is the one opened for the file`)
      t.same(s.fsyncs.filter((x) => x.path === null), [], 'no fsync with an unknown handle (e.g. the datasync flag)')
      const dd = await run('dd', ['if=/dev/zero', `of=${m.mnt}/dd-synced`, 'bs=64k', 'count=4', 'conv=fsync'])
      t.equal(dd.code, 0, dd.stderr)
      const s2 = await m.stats()
      t.ok(s2.fsyncs.some((x) => x.path === '/dd-synced'), 'dd conv=fsync too')
    })
  })

  t.test('new files, directories and symlinks belong to the process that creates them (and to a setgid directory\'s group)', async (t) => {
    const m = await startMemoryMount({ allowOther: true })
    t.teardown(() => m.stop())
    t.equal((await run('chmod', ['1777', m.mnt])).code, 0)
    const asNobody = (script: string) => run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'sh', '-c', script])
    let r = await asNobody(`cd ${m.mnt} && echo x > f && mkdir d && ln -s f l && echo more >> f`)
    t.equal(r.code, 0, `created and written again by uid 65534: ${r.stderr}`)
    r = await run('stat', ['-c', '%n %u:%g', `${m.mnt}/f`, `${m.mnt}/d`, `${m.mnt}/l`])
    t.equal(r.stdout.trim(), [`${m.mnt}/f 65534:65534`, `${m.mnt}/d 65534:65534`, `${m.mnt}/l 65534:65534`].join('\n'))
    t.equal((await run('sh', ['-c', `echo root > ${m.mnt}/r`])).code, 0)
    r = await run('stat', ['-c', '%u:%g', `${m.mnt}/r`])
    t.equal(r.stdout.trim(), '0:0', 'and root\'s files belong to root')
    r = await asNobody(`echo no > ${m.mnt}/r`)
    t.not(r.code, 0, 'which uid 65534 cannot overwrite (default_permissions)')

    // A setgid directory: new entries take its group, new directories its setgid bit (as ext4).
    t.equal((await run('sh', ['-c', `mkdir ${m.mnt}/shared && chgrp 100 ${m.mnt}/shared && chmod 2777 ${m.mnt}/shared`])).code, 0)
    r = await asNobody(`cd ${m.mnt}/shared && echo x > f && mkdir d && ln -s f l`)
    t.equal(r.code, 0, r.stderr)
    r = await run('stat', ['-c', '%n %u:%g %A', `${m.mnt}/shared/f`, `${m.mnt}/shared/d`, `${m.mnt}/shared/l`])
    t.equal(r.stdout.trim(), [
      `${m.mnt}/shared/f 65534:100 -rw-r--r--`,
      `${m.mnt}/shared/d 65534:100 drwxr-sr-x`,
      `${m.mnt}/shared/l 65534:100 lrwxrwxrwx`,
    ].join('\n'), 'the group of the setgid directory; the subdirectory is setgid too')
  })

  t.test('an operation the file system never answers fails after the timeout', async (t) => {
    const m = await startMemoryMount({ opTimeoutMs: 1500 })
    t.teardown(() => m.stop())
    const started = Date.now()
    const r = await run('stat', [`${m.mnt}/hang-forever`], { timeoutMs: 20_000 })
    const took = Date.now() - started
    t.not(r.code, 0, 'stat fails')
    t.match(r.stderr, /timed out/i, `with ETIMEDOUT: ${r.stderr.trim()}`)
    t.ok(took >= 1400 && took < 10_000, `after ~1.5 s (${took} ms)`)
    t.ok((await m.stats()).hangs >= 1, 'the request did reach the file system')
    const ok = await run('ls', [m.mnt])
    t.equal(ok.code, 0, 'the mount still answers afterwards')
  })

  t.test('no mount is left behind', async (t) => {
    t.same(await leftoverMounts(), [], 'none of this file\'s mount points is in /proc/mounts')
  })
})
