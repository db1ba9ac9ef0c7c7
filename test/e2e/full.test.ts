// Every server full (each on a small tmpfs of its own): the writer gets ENOSPC within seconds, not
// EIO after a minute; the mount keeps serving reads; a delete plus the daemon's gc frees space and
// writing works again. df shows the servers' real free space divided by R.
import t from 'tap'
import path from 'node:path'
import { smallDisk } from '../helpers/small-disk'
import { daemonLog, withFuse, makeVolume, mountVolume, shell, waitFor } from './support'

const DISK_MIB = 24

withFuse(() => {
  t.test('full servers: ENOSPC fast, reads go on, delete + gc frees space', async (t) => {
    const disks = await Promise.all([0, 1, 2, 3].map(() => smallDisk(t, DISK_MIB)))
    const vol = await makeVolume(t, { chunkSize: '1MiB', dataDirs: disks.map((d) => path.join(d, 'data')) })
    const m = await mountVolume(t, vol, { gcInterval: 1, gcGrace: 1 })
    const M = m.mnt

    const keep = await shell(`head -c 3000000 /dev/urandom > ${M}/keep && sync ${M}/keep && sha256sum < ${M}/keep`)
    t.equal(keep.code, 0, `a first file fits: ${keep.stderr}`)
    const df = await shell(`df -B1 --output=avail,size ${M} | tail -1`)
    const [avail, size] = df.stdout.trim().split(/\s+/).map(Number)
    t.ok(size! <= (4 * DISK_MIB * 1024 * 1024) / 2 && size! > (4 * DISK_MIB * 1024 * 1024) / 2 - 4 * 1024 * 1024, `df: size ${size} is the servers' total / R`)
    t.ok(avail! < size!, `df: ${avail} available`)

    const t0 = Date.now()
    const fill = await shell(`dd if=/dev/zero of=${M}/big bs=1M count=200 conv=fsync 2>&1`, { timeoutMs: 60_000 })
    const took = Date.now() - t0
    t.not(fill.code, 0, 'writing more than the servers hold fails')
    t.match(fill.stdout + fill.stderr, /No space left on device/, 'with ENOSPC')
    t.ok(took < 10_000, `within 10 s (${took} ms)`)

    const again = await shell(`sha256sum < ${M}/keep`)
    t.equal(again.stdout, keep.stdout, 'the mount still serves reads, byte for byte')
    t.equal((await shell(`ls ${M}`)).code, 0, 'and lists')

    const rm = await shell(`rm ${M}/big && sync ${M}`)
    t.equal(rm.code, 0, `a delete works on full servers${rm.stderr ? `: ${rm.stderr}` : ""}`, { log: rm.code ? await daemonLog(vol, M) : undefined })
    // The daemon's gc (every second, a grace of one second here) gives the space back; then a write fits again.
    const local = path.join(vol.dir, 'after')
    await shell(`head -c 2000000 /dev/urandom > ${local}`)
    const wrote = await waitFor(30_000, async () => (await shell(`cp ${local} ${M}/after && sync ${M}/after`)).code === 0, 1000)
    t.ok(wrote, 'after the delete and gc a new file is written and synced')
    t.equal((await shell(`cmp ${local} ${M}/after`)).code, 0, 'and reads back identical')
    const u = await m.umount()
    t.equal(u.code, 0, `umount: ${u.stderr}`)
  })
})
