// Commands beside a mount: while this machine's mount daemon holds the lease, put, mkdir, mv, rm and
// gc work (they go through the mount): each change shows in the mount at once and is committed
// (a read-only `edfs ls`, which sees only commits, shows it too). Their checks stay the same.
import t from 'tap'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { runEdfs } from '../helpers/servers'
import { daemonLog, withFuse, makeVolume, mountVolume, shell, waitFor } from './support'

withFuse(() => {
  t.test('put, mkdir, mv, rm and gc while mounted', async (t) => {
    const vol = await makeVolume(t)
    const m = await mountVolume(t, vol)
    const M = m.mnt
    const edfs = (args: string[]) => runEdfs([...args, '--config', vol.cfg], { env: vol.env, timeoutMs: 60_000 })
    const ls = async (p: string) => (await edfs(['ls', p])).stdout.split('\n').map((l) => l.trim()).filter(Boolean)

    const mk = await edfs(['mkdir', '-p', '/a/b'])
    t.equal(mk.code, 0, `mkdir -p beside the mount: ${mk.stderr}`)
    t.match(mk.stderr, /going through the mount/)
    t.ok((await shell(`test -d ${M}/a/b`)).code === 0, 'the mount shows it at once')
    t.same(await ls('/a'), ['b'], 'and it is committed')

    const src = path.join(vol.dir, 'src')
    await mkdir(path.join(src, 'sub'), { recursive: true })
    await writeFile(path.join(src, 'one.txt'), 'one\n')
    await writeFile(path.join(src, 'sub', 'two.txt'), 'two\n'.repeat(100_000))
    const put = await edfs(['put', src, '/a/b'])
    t.equal(put.code, 0, `put a tree beside the mount: ${put.stderr}`)
    t.equal(await readFile(`${M}/a/b/src/sub/two.txt`, 'utf8'), 'two\n'.repeat(100_000), 'the mount shows the files at once')
    t.same(await ls('/a/b/src'), ['one.txt', 'sub'])
    const again = await edfs(['put', path.join(src, 'one.txt'), '/a/b/src/one.txt'])
    t.equal(again.code, 1, 'the same checks: an existing file is not overwritten without --force')
    t.match(again.stderr, /already exists in the volume/)

    t.equal((await edfs(['mv', '/a/b/src/one.txt', '/a/uno.txt'])).code, 0, 'mv beside the mount')
    t.equal(await readFile(`${M}/a/uno.txt`, 'utf8'), 'one\n')
    const dirRm = await edfs(['rm', '/a/b'])
    t.equal(dirRm.code, 1, 'rm of a directory without -r is refused')
    t.match(dirRm.stderr, /is a directory \(use -r\)/)
    t.equal((await edfs(['rm', '-r', '/a/b'])).code, 0)
    t.equal((await shell(`test -e ${M}/a/b`)).code, 1, 'gone from the mount')
    t.same(await ls('/a'), ['uno.txt'], 'and from the committed volume')
    const missing = await edfs(['rm', '/nope'])
    t.match(missing.stderr, /no such file or directory: \/nope/)

    const gc = await edfs(['gc'])
    t.equal(gc.code, 0, `gc beside the mount: ${gc.stderr}`)
    t.match(gc.stdout, /asked the mount's daemon/)
    t.ok(await waitFor(10_000, async () => /gc requested \(edfs gc\)/.test(await daemonLog(vol, M, 50)), 200), 'the daemon ran a pass')
    const dry = await edfs(['gc', '--dry-run'])
    t.equal(dry.code, 1)
    t.match(dry.stderr, /not available while .* is mounted/)
    t.equal((await m.umount()).code, 0)
  })
})
