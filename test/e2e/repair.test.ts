// The mount repairs by itself. A server killed during a cp -r into the mount: once it is back, with
// no command run, every chunk gets its R copies on its home servers (checked with fsck --verify).
// Blobs still queued when the daemon stops are repaired after the next mount. The full pass is off
// here (--repair-pass 0), so only the queue of degraded writes can do it.
import t from 'tap'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { runEdfs, startServer } from '../helpers/servers'
import { daemonLog, withFuse, makeVolume, mountVolume, shell, sleep, waitFor, type E2eVolume } from './support'

/** The summary counts of `edfs fsck --verify`, and its exit code. */
async function fsckVerify(vol: E2eVolume): Promise<{ code: number | null; text: string; healthy: boolean }> {
  const r = await runEdfs(['fsck', '--verify', '--config', vol.cfg], { env: vol.env, timeoutMs: 120_000 })
  const healthy = r.code === 0 && / 0 misplaced, 0 under-replicated, 0 missing/.test(r.stdout) && /corrupt copies: 0/.test(r.stdout)
  return { code: r.code, text: r.stdout.trim() || r.stderr.trim(), healthy }
}

async function queued(vol: E2eVolume): Promise<number> {
  const volumeId = JSON.parse(await readFile(vol.cfg, 'utf8')).volumeId as string
  try {
    const q = JSON.parse(await readFile(path.join(vol.env.XDG_STATE_HOME!, 'edfs', `repair-${volumeId}.json`), 'utf8'))
    return Object.keys(q.blobs).length
  } catch {
    return 0
  }
}

withFuse(() => {
  t.test('background repair: a server lost during cp -r, and a daemon restart with repairs queued', async (t) => {
    const vol = await makeVolume(t, { chunkSize: '1MiB' })
    const src = path.join(vol.dir, 'src')
    t.equal((await shell(`mkdir -p ${src} && for i in $(seq 1 24); do head -c $((i * 150000)) /dev/urandom > ${src}/f$i; done`)).code, 0)
    let m = await mountVolume(t, vol, { repairPass: 0 })
    const victim = vol.servers[2]!

    // Phase 1: killed in the middle of the copy, back afterwards; nothing else is done.
    const cp = shell(`cp -r ${src} ${m.mnt}/a && sync ${m.mnt}`, { timeoutMs: 120_000 })
    await sleep(400)
    await victim.kill9()
    const copied = await cp
    t.equal(copied.code, 0, `cp -r with a server killed midway: ${copied.stderr}`)
    t.ok(await waitFor(5000, async () => (await queued(vol)) > 0, 100), `chunks written degraded are queued (${await queued(vol)})`)
    t.notOk((await fsckVerify(vol)).healthy, 'while the server is down, the volume is not healthy')
    await victim.restart()
    const healed = await waitFor(60_000, async () => (await fsckVerify(vol)).healthy, 2000)
    t.ok(healed, `with no command, every chunk has R verified copies at home: ${(await fsckVerify(vol)).text}`)
    t.equal(await queued(vol), 0, 'the queue is empty')

    // Phase 2: degraded writes, the daemon stops with them queued, the server returns, a new mount repairs.
    await victim.kill9()
    t.equal((await shell(`cp -r ${src} ${m.mnt}/b && sync ${m.mnt}`, { timeoutMs: 120_000 })).code, 0)
    t.ok(await waitFor(5000, async () => (await queued(vol)) > 0, 100), 'chunks queued')
    const waiting = await queued(vol)
    t.equal((await m.umount()).code, 0, 'umount with repairs queued')
    t.ok((await queued(vol)) >= waiting, `the queue outlives the daemon (${await queued(vol)} chunks)`)
    await victim.restart()
    m = await mountVolume(t, vol, { repairPass: 0 })
    const healed2 = await waitFor(60_000, async () => (await fsckVerify(vol)).healthy, 2000)
    t.ok(healed2, `after the remount the queued chunks went home: ${(await fsckVerify(vol)).text}`)
    t.equal((await shell(`diff -r ${src} ${m.mnt}/a && diff -r ${src} ${m.mnt}/b`)).code, 0, 'both copies read back identical')
    t.equal((await m.umount()).code, 0)
  })
})

withFuse(() => {
  t.test('background repair: the full pass restores copies a server lost, with no command', async (t) => {
    const vol = await makeVolume(t, { chunkSize: '1MiB' })
    // A pass every ~2 s (0.0005 h) instead of daily.
    const m = await mountVolume(t, vol, { repairPass: 0.0005 })
    t.equal((await shell(`for i in $(seq 1 8); do head -c 2500000 /dev/urandom > ${m.mnt}/f$i; done && sync ${m.mnt}`)).code, 0)
    t.ok(await waitFor(30_000, async () => (await fsckVerify(vol)).healthy, 1000), 'healthy to begin with')
    const victim = vol.servers[1]!
    await victim.stop()
    t.equal((await shell(`rm -rf ${victim.dataDir}/users/*/blobs`)).code, 0, 'a server loses every blob (a replaced disk)')
    const held = async () => Number((await shell(`find ${victim.dataDir}/users/*/blobs -type f 2>/dev/null | wc -l`)).stdout.trim())
    t.equal(await held(), 0, 'it holds no copy')
    await victim.restart()
    // A pass comes every ~2 s: fsck could already find it healed, so what the server holds tells.
    const healed = await waitFor(60_000, async () => (await held()) > 0 && (await fsckVerify(vol)).healthy, 2000)
    t.ok(healed, `the next full pass restored them (${await held()} copies back): ${(await fsckVerify(vol)).text}`)
    t.equal((await m.umount()).code, 0)
  })
})

withFuse(() => {
  t.test('a mount follows a change of the volume\'s servers and rebalances what it wrote', async (t) => {
    const vol = await makeVolume(t, { chunkSize: '1MiB' })
    const m = await mountVolume(t, vol, { repairPass: 0 })
    t.equal((await shell(`for i in $(seq 1 6); do head -c 2500000 /dev/urandom > ${m.mnt}/f$i; done && sync ${m.mnt}`)).code, 0)
    const fifth = await startServer(t)
    const add = await runEdfs(['servers', 'add', fifth.url, '--config', vol.cfg], { env: vol.env, timeoutMs: 120_000 })
    t.equal(add.code, 0, `servers add beside the mount: ${add.stderr}`)
    // Written by the daemon after the change: once it follows (within 5 s) they go to the new homes,
    // and anything it placed by the old list meanwhile is moved by its rebalance.
    t.equal((await shell(`for i in $(seq 1 6); do head -c 2500000 /dev/urandom > ${m.mnt}/g$i; done && sync ${m.mnt}`)).code, 0)
    const healed = await waitFor(60_000, async () => (await fsckVerify(vol)).healthy, 2000)
    t.ok(healed, `every blob at home under the new list: ${(await fsckVerify(vol)).text}`)
    t.match(await daemonLog(vol, m.mnt, 200), /servers of the volume \(epoch 1\)/, 'the daemon logged the new list')
    t.equal((await shell(`ls ${m.mnt} | wc -l`)).stdout.trim(), '12')
    t.equal((await m.umount()).code, 0)
  })
})
