// The kernel's page cache on a real mount: the writer's mount keeps file pages across opens
// (kernel_cache: the daemon is the volume's only writer), yet never shows stale data after an
// overwrite, a truncate, a rename over, or a write through another hard-linked name; a read-only
// mount following the writer drops pages of a file the writer changed (auto_cache).
import t from 'tap'
import { runEdfs } from '../helpers/servers'
import { attachConfig, withFuse, leftoverMounts, makeVolume, mountVolume, run, shell, sleep, waitFor } from './support'

/** Bytes of `file` in the page cache (fincore). */
async function resident(file: string): Promise<number> {
  const r = await run('fincore', ['--bytes', '--noheadings', '--output', 'RES', file])
  return Number(r.stdout.trim())
}

withFuse(() => {
  t.test('page cache on the writer and on a follower', async (t) => {
    const vol = await makeVolume(t, { chunkSize: '1MiB' })
    const w = await mountVolume(t, vol)
    const W = w.mnt
    const ok = async (script: string): Promise<string> => {
      const r = await shell(script)
      t.equal(r.code, 0, `${script}${r.stderr ? `: ${r.stderr}` : ''}`)
      return r.stdout.trim()
    }
    const sum = (p: string) => ok(`sha256sum < ${p} | cut -c1-16`)
    await ok(`head -c 3000000 /dev/urandom > ${vol.dir}/ref && cp ${vol.dir}/ref ${W}/f && cat ${W}/f > /dev/null`)
    await ok(`python3 -c "open('${W}/f').close()"`)
    t.ok((await resident(`${W}/f`)) >= 2_900_000, 'an open keeps the pages read before it (kernel_cache)')

    await ok(`printf NEWBYTES | dd of=${W}/f bs=1 seek=1000000 conv=notrunc status=none && printf NEWBYTES | dd of=${vol.dir}/ref bs=1 seek=1000000 conv=notrunc status=none`)
    t.equal(await sum(`${W}/f`), await sum(`${vol.dir}/ref`), 'an overwrite shows at once')
    await ok(`truncate -s 1500000 ${W}/f && truncate -s 1500000 ${vol.dir}/ref`)
    t.equal(await sum(`${W}/f`), await sum(`${vol.dir}/ref`), 'so does a truncate')
    await ok(`head -c 2000000 /dev/urandom > ${vol.dir}/other && cp ${vol.dir}/other ${W}/g && mv ${W}/g ${W}/f`)
    t.equal(await sum(`${W}/f`), await sum(`${vol.dir}/other`), 'and a rename over the file')

    // Hard links: each name has pages of its own; a write through one name must show through the other.
    await ok(`cp ${vol.dir}/ref ${W}/h1 && ln ${W}/h1 ${W}/h2 && cat ${W}/h2 > /dev/null && cat ${W}/h1 > /dev/null`)
    await ok(`printf THROUGH-H1 | dd of=${W}/h1 bs=1 seek=5000 conv=notrunc status=none && printf THROUGH-H1 | dd of=${vol.dir}/ref bs=1 seek=5000 conv=notrunc status=none`)
    t.equal(await sum(`${W}/h2`), await sum(`${vol.dir}/ref`), 'a write through one hard-linked name shows through the other on its next open')

    // A follower: read-only mount of the same volume from a second config.
    t.equal((await runEdfs(['sync', W], { env: vol.env })).code, 0)
    const cfg2 = await attachConfig(vol, 'reader.json')
    const r = await mountVolume(t, vol, { name: 'ro', cfg: cfg2, readOnly: true })
    const R = r.mnt
    t.equal(await sum(`${R}/h1`), await sum(`${vol.dir}/ref`), 'the follower reads the file')
    await ok(`cat ${R}/h1 > /dev/null`)
    await ok(`printf CHANGED-BY-WRITER | dd of=${W}/h1 bs=1 seek=100 conv=notrunc status=none && printf CHANGED-BY-WRITER | dd of=${vol.dir}/ref bs=1 seek=100 conv=notrunc status=none`)
    t.equal((await runEdfs(['sync', W], { env: vol.env })).code, 0)
    const want = await sum(`${vol.dir}/ref`)
    const seen = await waitFor(15_000, async () => (await sum(`${R}/h1`)) === want, 250)
    t.ok(seen, 'the follower shows the writer\'s change after its poll, not its cached pages')
    await sleep(100)
    t.equal((await r.umount()).code, 0)
    t.equal((await w.umount()).code, 0)
  })

  t.test('no mount is left behind', async (t) => {
    t.same(await leftoverMounts(), [], 'none of this file\'s mount points is in /proc/mounts')
  })
})
