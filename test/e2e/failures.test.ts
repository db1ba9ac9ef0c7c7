// Failures under a real mount: a storage server SIGKILLed during cp -r (R = 2: the copy succeeds and
// is intact, also after a remount); the mount daemon SIGKILLed after fsync (the remount clears the
// stale mount point and shows the fsynced data); every server stopped (SIGSTOP: hung, not refusing)
// -> reading an uncached file fails with EIO within the volume's timeout, never hangs, and the mount
// resumes once the servers do (SIGCONT); umount with every server gone reports the changes it could
// not store (the daemon's stop status) and exits non-zero.
import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import * as path from 'node:path'
import { CMD_TIMEOUT, alive, daemonLog, fuseMountsUnder, withFuse, leftoverMounts, makeVolume, mountVolume, run, shell, sleep, waitFor } from './support'

const REPO = path.resolve(__dirname, '../../..')

withFuse(() => {
  t.test('a server and the daemon killed', async (t) => {
    const vol = await makeVolume(t, { chunkSize: '1MiB' })
    let m = await mountVolume(t, vol)
    const M = m.mnt
    const local = await mkdtemp(path.join(tmpdir(), 'edfs-e2e-local-'))
    t.teardown(() => rm(local, { recursive: true, force: true }))

    await t.test('a storage server SIGKILLed during cp -r (R = 2)', async (t) => {
      // A tree with big and small files: TypeScript's lib (~23 MB) and this repo's src.
      const prep = await shell(`mkdir ${local}/tree && cp -r ${REPO}/node_modules/typescript/lib ${REPO}/src ${local}/tree/ && head -c 20000000 /dev/urandom > ${local}/tree/random.bin`)
      t.equal(prep.code, 0, prep.stderr)
      const cp = run('cp', ['-r', `${local}/tree`, `${M}/tree`], { timeoutMs: CMD_TIMEOUT })
      await sleep(1500)
      const victim = vol.servers[1]!
      await victim.kill9()
      t.pass(`server ${victim.url} SIGKILLed 1.5 s into the copy`)
      const r = await cp
      t.equal(r.code, 0, `cp -r succeeds (${r.ms} ms) ${r.stderr}`)
      const d = await run('diff', ['-r', `${local}/tree`, `${M}/tree`], { timeoutMs: CMD_TIMEOUT })
      t.equal(d.code, 0, `diff -r equal ${d.stdout.slice(0, 1000)}`)
      // From the servers, not from caches: unmount, mount again (still one server down).
      const u = await m.umount()
      t.equal(u.code, 0, `umount: ${u.stderr}`)
      m = await m.remount()
      const d2 = await run('diff', ['-r', `${local}/tree`, `${M}/tree`], { timeoutMs: CMD_TIMEOUT })
      t.equal(d2.code, 0, `after a remount with the server still down: diff -r equal ${d2.stdout.slice(0, 1000)}`)
      await victim.restart()
    })

    await t.test('the daemon SIGKILLed after fsync', async (t) => {
      const py = `
import os
fd = os.open('${M}/synced.bin', os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b'durable ' * 300000)
os.fsync(fd)
os.close(fd)
fd = os.open('${M}/synced.bin', os.O_WRONLY)
os.pwrite(fd, b'DURABLE', 1000000)
os.fsync(fd)
os.pwrite(fd, b'not synced', 0)  # written, neither fsynced nor closed: may be lost
open('${local}/synced.marker', 'w').close()
import time, sys
for _ in range(600):
    if os.path.exists('${local}/killed.marker'): break
    time.sleep(0.1)
try:
    os.close(fd)
except OSError as e:
    print('close:', e)
    sys.exit(5)
`
      const writer = run('python3', ['-c', py], { timeoutMs: 90_000 })
      const synced = await waitFor(60_000, async () => (await run('test', ['-e', `${local}/synced.marker`])).code === 0, 100)
      t.ok(synced, 'fsync returned')
      await sleep(300)
      t.ok(m.pid > 0, `daemon pid ${m.pid}`)
      if (m.pid > 0) process.kill(m.pid, 'SIGKILL')
      await waitFor(5000, async () => !alive(m.pid), 50)
      t.notOk(alive(m.pid), 'the daemon is gone')
      await shell(`touch ${local}/killed.marker`)
      const w = await writer
      t.equal(w.code, 5, `close of the file after the crash reports an error: ${w.stdout.trim()} ${w.stderr.trim()}`)
      t.match((await run('ls', [M])).stderr, /not connected/, 'stale mount point: ENOTCONN')

      const again = await m.remount()
      t.match(again.result.stderr, /stale/, `the mount cleared the stale mount point: ${again.result.stderr.trim()}`)
      m = again
      const expected = Buffer.from('durable '.repeat(300000))
      expected.write('DURABLE', 1000000)
      const py2 = `import sys, hashlib; d = open('${M}/synced.bin', 'rb').read(); print(len(d), hashlib.sha256(d).hexdigest(), d[:10])`
      const r = await run('python3', ['-c', py2])
      const { createHash } = await import('node:crypto')
      const head = r.stdout.trim().split(' ').slice(2).join(' ')
      const unsynced = Buffer.from(expected)
      unsynced.write('not synced', 0)
      const got = r.stdout.trim().split(' ').slice(0, 2).join(' ')
      const hash = (b: Buffer) => `${b.length} ${createHash('sha256').update(b).digest('hex')}`
      t.ok(got === hash(expected) || got === hash(unsynced), `the fsynced data is there, intact (first bytes ${head}: the write that was not fsynced ${got === hash(expected) ? 'is lost' : 'survived'})`)
      const u = await m.umount()
      t.equal(u.code, 0, `umount: ${u.stderr}`)
      t.same(await fuseMountsUnder(M), [])
    })
  })

  t.test('every server stopped, then back', async (t) => {
    const vol = await makeVolume(t, { chunkSize: '1MiB', timeoutMs: 3000 })
    let m = await mountVolume(t, vol)
    const M = m.mnt
    t.equal((await shell(`head -c 6000000 /dev/urandom > ${M}/f1 && head -c 3000000 /dev/urandom > ${M}/f2 && cp ${M}/f1 ${vol.dir}/f1.ref`)).code, 0, 'two files')
    // Nothing cached: a fresh daemon.
    t.equal((await m.umount()).code, 0)
    m = await m.remount()

    for (const s of vol.servers) s.pause()
    t.teardown(() => vol.servers.forEach((s) => s.resume()))
    t.pass('all 4 servers SIGSTOPped')
    const ls = await run('ls', ['-l', M], { timeoutMs: 10_000 })
    t.equal(ls.code, 0, `ls -l still answers from memory (${ls.ms} ms)`)
    const cat = await run('cat', [`${M}/f1`], { timeoutMs: 60_000 })
    t.not(cat.code, 0, 'cat of an uncached file fails')
    t.not(cat.signal, 'SIGKILL', `and does not hang (bounded at 60 s; took ${cat.ms} ms)`)
    t.match(cat.stderr, /Input\/output error/, `EIO: ${cat.stderr.trim()}`)
    // Each read call fails once the volume's deadline (the configured timeout) passes; the kernel
    // retries a failed read once, so cat sees at most two of them.
    t.ok(cat.ms < 2 * 3000 + 2000, `each read call fails within the 3 s timeout: ${cat.ms} ms`)
    t.comment(`cat with every server stopped failed after ${cat.ms} ms (timeout 3000 ms)`)
    const cat2 = await run('cat', [`${M}/f2`], { timeoutMs: 60_000 })
    t.match(cat2.stderr, /Input\/output error/, `a second file too, after ${cat2.ms} ms`)
    t.ok(cat2.ms < 2 * 3000 + 2000, `also within the timeout: ${cat2.ms} ms`)

    for (const s of vol.servers) s.resume()
    const started = Date.now()
    const back = await waitFor(60_000, async () => (await run('cmp', [`${M}/f1`, `${vol.dir}/f1.ref`], { timeoutMs: 20_000 })).code === 0, 500)
    t.ok(back, `after SIGCONT the mount resumes: f1 reads correctly ${Date.now() - started} ms later`)
    // python, not `echo > f`: the shell ignores an error of close(), which is where the commit is.
    const w = await run('python3', ['-c', `f = open('${M}/after', 'w'); f.write('after\\n'); f.close(); print(open('${M}/after').read(), end='')`], { timeoutMs: 60_000 })
    t.equal(w.stdout, 'after\n', `and writes again, close included (${w.ms} ms) ${w.stderr}`)
    const u = await m.umount()
    t.equal(u.code, 0, `umount: ${u.stderr}`)
    m = await m.remount({ readOnly: true })
    const after = (await run('cat', [`${M}/after`])).stdout
    t.equal(after, 'after\n', 'the write after the outage was committed')
    if (after !== 'after\n') t.comment(`daemon log:\n${await daemonLog(vol, M, 80)}`)
    t.equal((await m.umount()).code, 0)
  })

  t.test('umount says so when the last changes could not be stored', async (t) => {
    const vol = await makeVolume(t, { timeoutMs: 2000 })
    const m = await mountVolume(t, vol, { commitInterval: 3600 }) // nothing commits before umount
    t.equal((await shell(`echo pending > ${m.mnt}/f`)).code, 0, 'a file written, its commit pending')
    for (const s of vol.servers) await s.stop()
    const u = await m.umount()
    t.not(u.code, 0, 'umount fails')
    t.match(u.stderr, /the last changes could not all be stored:\nclosing the volume failed: /, `and says why: ${u.stderr.trim()}`)
    t.notOk(alive(m.pid), 'the daemon exited')
    t.same(await fuseMountsUnder(m.mnt), [], 'and the mount is gone')
    for (const s of vol.servers) await s.restart()
  })

  t.test('no mount is left behind', async (t) => {
    t.same(await leftoverMounts(), [], 'none of this file\'s mount points is in /proc/mounts')
  })
})
