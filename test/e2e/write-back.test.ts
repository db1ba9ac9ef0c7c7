// Write-back commits through a real mount, with the daemon SIGKILLed: what `edfs sync` covered is
// there after the remount, changes after it (within the commit interval) are lost as a whole — the
// volume shows the state at the sync, not a mix — a change older than the interval was committed
// without any sync, and --sync-close makes close itself durable. The daemon's background gc brings
// the servers' space back to the live data after overwrites.
import t, { type Test } from 'tap'
import { runEdfs } from '../helpers/servers'
import { alive, withFuse, leftoverMounts, makeVolume, mountVolume, run, shell, sleep, waitFor, type E2eMount } from './support'

async function kill9(t: Test, m: E2eMount): Promise<void> {
  t.ok(m.pid > 0, `daemon pid ${m.pid}`)
  process.kill(m.pid, 'SIGKILL')
  t.ok(await waitFor(5000, async () => !alive(m.pid), 50), 'the daemon is gone')
}

/** path -> sha256 of every file under dir (sorted, as text), or the error. */
async function tree(dir: string): Promise<string> {
  const r = await shell(`cd ${dir} && find . -type f -print0 | sort -z | xargs -0 -r sha256sum; find . -type d | sort`)
  return r.code === 0 ? r.stdout : `error: ${r.stderr}`
}

withFuse(() => {
  t.test('write-back: sync, crash, interval, --sync-close', async (t) => {
    const vol = await makeVolume(t, { chunkSize: '1MiB' })
    let m = await mountVolume(t, vol, { commitInterval: 30 })
    const M = m.mnt
    const sh = async (script: string) => {
      const r = await shell(script)
      t.equal(r.code, 0, `${script}${r.stderr ? `: ${r.stderr}` : ''}`)
    }

    // Batch 1, then edfs sync: durable.
    await sh(`mkdir ${M}/d && head -c 3000000 /dev/urandom > ${M}/d/a && echo small > ${M}/d/b && mv ${M}/d/a ${M}/d/a2 && ln ${M}/d/b ${M}/d/b2`)
    const s = await runEdfs(['sync', M], { env: vol.env })
    t.equal(s.code, 0, `edfs sync: ${s.stderr}`)
    const synced = await tree(M)
    // Batch 2, closed but neither synced nor older than the 30 s interval.
    await sh(`head -c 2000000 /dev/urandom > ${M}/d/c && rm ${M}/d/b && echo overwritten > ${M}/d/a2 && mkdir ${M}/e`)
    t.not(await tree(M), synced, 'the second batch changed the tree')
    await kill9(t, m)
    m = await m.remount({})
    t.equal(await tree(M), synced, 'after kill -9: exactly the state at the sync, the later batch lost as a whole')

    const u = await m.umount()
    t.equal(u.code, 0, `umount: ${u.stderr}`)
    m = await mountVolume(t, vol, { commitInterval: 1 })
    await sh(`echo committed-by-the-interval > ${M}/late`)
    await sleep(3500)
    await kill9(t, m)
    m = await m.remount({})
    t.equal((await run('cat', [`${M}/late`])).stdout, 'committed-by-the-interval\n', 'a change older than the interval survives kill -9 without any sync')

    const u2 = await m.umount()
    t.equal(u2.code, 0, `umount: ${u2.stderr}`)
    m = await mountVolume(t, vol, { commitInterval: 30, syncClose: true })
    await sh(`echo durable-at-close > ${M}/closed`)
    await kill9(t, m)
    m = await m.remount({})
    t.equal((await run('cat', [`${M}/closed`])).stdout, 'durable-at-close\n', '--sync-close: close itself is durable')
    const all = await runEdfs(['sync'], { env: vol.env })
    t.equal(all.code, 0, `edfs sync without a path syncs every edfs mount: ${all.stderr}`)
    const bad = await runEdfs(['sync', vol.dir], { env: vol.env })
    t.not(bad.code, 0)
    t.match(bad.stderr, /is not on an edfs mount/)
    const u3 = await m.umount()
    t.equal(u3.code, 0, `umount: ${u3.stderr}`)
  })

  t.test('the daemon collects overwritten chunks in the background', async (t) => {
    const vol = await makeVolume(t, { chunkSize: '1MiB' })
    const m = await mountVolume(t, vol, { gcInterval: 1, gcGrace: 1 })
    const M = m.mnt
    const stored = async () => Number((await shell(`du -sb --apparent-size ${vol.servers.map((s) => s.dataDir).join(' ')} | awk '{n += $1} END {print n}'`)).stdout.trim())
    const empty = await stored()
    for (let i = 0; i < 5; i++) {
      const r = await shell(`head -c 8000000 /dev/urandom > ${M}/big`)
      t.equal(r.code, 0, r.stderr)
      const s = await runEdfs(['sync', M], { env: vol.env })
      t.equal(s.code, 0, s.stderr)
    }
    const live = 8_000_000 * 2 // R = 2
    const before = (await stored()) - empty
    t.ok(before > 2 * live, `five overwrites left ${(before / 1e6).toFixed(0)} MB on the servers`)
    const settled = await waitFor(30_000, async () => (await stored()) - empty < 1.6 * live, 500)
    const after = (await stored()) - empty
    t.ok(settled, `the background gc brought it down to ${(after / 1e6).toFixed(1)} MB (live data x R: ${(live / 1e6).toFixed(0)} MB)`)
    t.equal((await shell(`head -c 8000000 ${M}/big | wc -c`)).stdout.trim(), '8000000', 'the live file reads back')
    const u = await m.umount()
    t.equal(u.code, 0, `umount: ${u.stderr}`)
  })

  t.test('no mount is left behind', async (t) => {
    t.same(await leftoverMounts(), [], 'none of this file\'s mount points is in /proc/mounts')
  })
})
