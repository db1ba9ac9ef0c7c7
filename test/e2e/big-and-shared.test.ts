// A 1 GiB file through a real mount (4 servers, R = 2, 4 MiB chunks) read back with a checksum; then
// the one-writer rule: a second read-write mount of the volume is refused naming the lease holder,
// and a read-only mount made from another config (a second `edfs init`) sees the writer's commits.
import t from 'tap'
import { createHash } from 'node:crypto'
import * as path from 'node:path'
import { attachConfig, fuseMountsUnder, withFuse, leftoverMounts, makeVolume, mountVolume, run, shell, tryMount, waitFor } from './support'

/** sha256 of `bytes` zero bytes, computed here by streaming. */
function zeroHash(bytes: number): string {
  const h = createHash('sha256')
  const block = Buffer.alloc(1 << 20)
  for (let done = 0; done < bytes; done += block.length) h.update(block)
  return h.digest('hex')
}

function rate(dd: string): string {
  return /copied, [^,]+, (.+)$/m.exec(dd)?.[1] ?? '?'
}

withFuse(() => {
  t.test('a 1 GiB file, a second writer, a reader elsewhere', async (t) => {
    const vol = await makeVolume(t)
    const m = await mountVolume(t, vol)
    const M = m.mnt

    await t.test('1 GiB written with dd and read back with a checksum', async (t) => {
      // edfs does not compress: zeros cost the same as any data, and spare the test a random source.
      const w = await run('dd', ['if=/dev/zero', `of=${M}/big`, 'bs=1M', 'count=1024', 'conv=fsync'], { timeoutMs: 300_000 })
      t.equal(w.code, 0, `dd of 1 GiB ending in fsync: ${w.ms} ms, ${rate(w.stderr)} ${w.code ? w.stderr : ''}`)
      t.equal((await run('stat', ['-c', '%s', `${M}/big`])).stdout.trim(), String(1 << 30), 'size 1 GiB')
      const expected = zeroHash(1 << 30)
      // More than the 512 MiB chunk cache: most of it comes back from the servers.
      const r = await run('sha256sum', [`${M}/big`], { timeoutMs: 300_000 })
      t.equal(r.code, 0, `sha256sum: ${r.ms} ms (${((1024 * 1000) / r.ms).toFixed(0)} MiB/s) ${r.stderr}`)
      t.equal(r.stdout.split(' ')[0], expected, 'checksum equal to 1 GiB of zeros')
      t.comment(`1 GiB: write ${rate(w.stderr)} (dd, fsync included), read ${((1024 * 1000) / r.ms).toFixed(0)} MiB/s (sha256sum)`)
      const rm = await run('rm', [`${M}/big`])
      t.equal(rm.code, 0, 'removed')
    })

    await t.test('a second read-write mount is refused, naming the lease holder', async (t) => {
      const r = await tryMount(t, vol, { name: 'mnt-second' })
      t.not(r.code, 0, 'refused')
      t.match(r.stderr, new RegExp(`open for writing by \\S+ pid ${m.pid} ${M.replace(/[/.]/g, '\\$&')}`), `the message names the holder: ${r.stderr.trim().split('\n').pop()}`)
      t.notMatch(r.stderr, /^\s+at /m, 'no stack trace')
      t.same(await fuseMountsUnder(path.join(vol.dir, 'mnt-second')), [], 'nothing mounted there')
      const w = await shell(`echo still > ${M}/still-writable`)
      t.equal(w.code, 0, 'the first mount still writes')
    })

    await t.test('a read-only mount on another config sees the writer\'s commits', async (t) => {
      const cfg2 = await attachConfig(vol, 'config-reader.json')
      const ro = await mountVolume(t, vol, { name: 'mnt-ro', cfg: cfg2, readOnly: true })
      const R = ro.mnt
      t.equal((await run('cat', [`${R}/still-writable`])).stdout, 'still\n', 'sees what was committed before it mounted')
      t.match((await shell(`touch ${R}/x`)).stderr, /Read-only file system/, 'EROFS')

      let started = Date.now()
      t.equal((await shell(`echo hello > ${M}/shared.txt && mkdir ${M}/newdir`)).code, 0, 'writer: a new file (closed) and a directory')
      let seen = await waitFor(15_000, async () => (await run('cat', [`${R}/shared.txt`], { timeoutMs: 5000 })).stdout === 'hello\n', 200)
      t.ok(seen, `the reader sees the new file after ${Date.now() - started} ms`)
      t.comment(`new file visible on the read-only mount after ${Date.now() - started} ms`)
      seen = await waitFor(10_000, async () => (await run('test', ['-d', `${R}/newdir`])).code === 0, 200)
      t.ok(seen, 'and the new directory')

      started = Date.now()
      t.equal((await shell(`echo changed > ${M}/shared.txt && rm ${M}/still-writable`)).code, 0, 'writer: overwrite and remove')
      seen = await waitFor(15_000, async () => (await run('cat', [`${R}/shared.txt`], { timeoutMs: 5000 })).stdout === 'changed\n', 200)
      t.ok(seen, `the reader sees the new contents after ${Date.now() - started} ms`)
      seen = await waitFor(10_000, async () => (await run('test', ['-e', `${R}/still-writable`])).code !== 0, 200)
      t.ok(seen, 'and the removal')
      const u = await ro.umount()
      t.equal(u.code, 0, `umount of the reader: ${u.stderr}`)
    })

    const u = await m.umount()
    t.equal(u.code, 0, `umount of the writer: ${u.stderr}`)
  })

  t.test('no mount is left behind', async (t) => {
    t.same(await leftoverMounts(), [], 'none of this file\'s mount points is in /proc/mounts')
  })
})
