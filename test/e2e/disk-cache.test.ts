// The disk cache through a real mount: after a remount, a file read before comes from the local
// disk (the servers send none of its chunks), `edfs status` shows the cache, and
// --disk-cache-size 0 turns it off.
import { readdir } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { runEdfs } from '../helpers/servers'
import { bytesServed, servedSince } from '../cluster/support'
import { withFuse, leftoverMounts, makeVolume, mountVolume, shell } from './support'

const SIZE = 6 * 1024 * 1024

withFuse(() => {
  t.test('a remounted volume reads from the disk cache', async (t) => {
    const vol = await makeVolume(t, { chunkSize: '1MiB' })
    const ok = async (script: string): Promise<string> => {
      const r = await shell(script)
      t.equal(r.code, 0, `${script}${r.stderr ? `: ${r.stderr}` : ''}`)
      return r.stdout.trim()
    }
    let m = await mountVolume(t, vol)
    await ok(`head -c ${SIZE} /dev/urandom > ${vol.dir}/ref && cp ${vol.dir}/ref ${m.mnt}/f`)
    t.equal((await m.umount()).code, 0)
    const want = await ok(`sha256sum < ${vol.dir}/ref`)

    // First read after a remount: from the servers, and kept on the disk.
    m = await m.remount()
    let before = await bytesServed(vol.servers)
    t.equal(await ok(`sha256sum < ${m.mnt}/f`), want)
    const cold = servedSince(before, await bytesServed(vol.servers))
    t.ok(cold >= SIZE, `the first read fetched the file from the servers (${cold} bytes)`)
    t.equal((await m.umount()).code, 0)
    const volumeId = (await readdir(path.join(vol.env.XDG_CACHE_HOME!, 'edfs')))[0]!
    const cacheDir = path.join(vol.env.XDG_CACHE_HOME!, 'edfs', volumeId)
    const du = Number(await ok(`find ${cacheDir} -type f -name '[0-9a-f]*' -printf '%s\\n' | awk '{ n += $1 } END { print n }'`))
    t.ok(du >= SIZE && du < SIZE * 1.01, `the sealed chunks are on the local disk (${du} bytes)`)

    // Second read after a remount: nothing of the file comes from the servers.
    m = await m.remount()
    before = await bytesServed(vol.servers)
    t.equal(await ok(`sha256sum < ${m.mnt}/f`), want, 'the file reads back right from the disk cache')
    const warm = servedSince(before, await bytesServed(vol.servers))
    t.ok(warm < SIZE / 20, `the servers sent ${warm} bytes (metadata only), not the file`)
    t.equal((await m.umount()).code, 0)

    const st = await runEdfs(['status', '--config', vol.cfg], { env: vol.env, timeoutMs: 60_000 })
    t.equal(st.code, 0, st.stderr)
    t.match(st.stdout, /disk cache \(mounts on this machine\): [\d.]+ MiB of [\d.]+ [KMGT]iB in \d+ files, hit rate 100\.0 % of \d+ reads/, 'edfs status shows it')

    // Off: every read goes to the servers.
    m = await m.remount({ diskCacheSize: '0' })
    before = await bytesServed(vol.servers)
    t.equal(await ok(`sha256sum < ${m.mnt}/f`), want)
    const off = servedSince(before, await bytesServed(vol.servers))
    t.ok(off >= SIZE, `--disk-cache-size 0: read from the servers (${off} bytes)`)
    t.equal((await m.umount()).code, 0)

    const bad = await runEdfs(['mount', m.mnt, '--config', vol.cfg, '--disk-cache-size', 'lots'], { env: vol.env, timeoutMs: 60_000 })
    t.not(bad.code, 0)
    t.match(bad.stderr, /--disk-cache-size: not a size: "lots".*or auto/, 'a bad size is a clear error')
  })

  t.test('no mount is left behind', async (t) => {
    t.same(await leftoverMounts(), [], 'none of this file\'s mount points is in /proc/mounts')
  })
})
