// Ordinary programs on a real mount of the in-memory file system through the adapter and binding:
// mkdir, ls, cp, cat, mv, rm, ln -s, ln, chmod, truncate, df, errors, a read-only mount.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import * as path from 'node:path'
import { withFuse, leftoverMounts, run, startMemoryMount } from './fixtures/harness'

withFuse(() => {
  t.test('basic operations through the mount', async (t) => {
    const m = await startMemoryMount()
    t.teardown(() => m.stop())
    const M = m.mnt
    const local = await mkdtemp(path.join(tmpdir(), 'edfs-local-'))
    t.teardown(() => rm(local, { recursive: true, force: true }))
    const src = path.join(local, 'src.bin')
    await writeFile(src, randomBytes(3 * 1024 * 1024 + 123))
    const ok = async (cmd: string, args: string[]) => {
      const r = await run(cmd, args)
      t.equal(r.code, 0, `${cmd} ${args.join(' ')}${r.stderr ? `: ${r.stderr.trim()}` : ''}`)
      return r.stdout
    }

    await ok('mkdir', ['-p', `${M}/a/b/c`])
    t.equal((await ok('ls', [`${M}/a`])).trim(), 'b')
    await ok('cp', [src, `${M}/a/b/file.bin`])
    await ok('cmp', [src, `${M}/a/b/file.bin`])
    await ok('sh', ['-c', `echo hello > ${M}/a/hello.txt && echo world >> ${M}/a/hello.txt`])
    t.equal(await ok('cat', [`${M}/a/hello.txt`]), 'hello\nworld\n', 'append with >>')
    const listing = await ok('ls', ['-la', `${M}/a`])
    t.match(listing, / \.\n/, 'ls -la lists .')
    t.match(listing, / \.\.\n/, 'ls -la lists ..')
    await ok('mv', [`${M}/a/hello.txt`, `${M}/a/b/c/moved.txt`])
    t.equal(await ok('cat', [`${M}/a/b/c/moved.txt`]), 'hello\nworld\n')
    t.not((await run('cat', [`${M}/a/hello.txt`])).code, 0, 'the old name is gone')
    await ok('ln', ['-s', 'b/c/moved.txt', `${M}/a/link`])
    t.equal((await ok('readlink', [`${M}/a/link`])).trim(), 'b/c/moved.txt')
    t.equal(await ok('cat', [`${M}/a/link`]), 'hello\nworld\n', 'reads through the symlink')
    await ok('ln', [`${M}/a/b/file.bin`, `${M}/a/hard.bin`])
    t.equal((await ok('stat', ['-c', '%h', `${M}/a/hard.bin`])).trim(), '2', 'hard link count')
    await ok('chmod', ['640', `${M}/a/b/file.bin`])
    t.equal((await ok('stat', ['-c', '%a %F', `${M}/a/b/file.bin`])).trim(), '640 regular file')
    await ok('truncate', ['-s', '10', `${M}/a/b/file.bin`])
    t.equal((await ok('stat', ['-c', '%s', `${M}/a/b/file.bin`])).trim(), '10')
    t.match(await ok('df', ['-P', M]), /edfs/, 'df shows the file system')
    await ok('sh', ['-c', `cd ${M}/a && tar cf - b | (mkdir ../t && cd ../t && tar xf -)`])
    t.equal((await ok('stat', ['-c', '%s', `${M}/t/b/file.bin`])).trim(), '10', 'tar round trip')

    const e1 = await run('rmdir', [`${M}/a`])
    t.match(e1.stderr, /not empty/i, 'rmdir of a non-empty directory: ENOTEMPTY')
    const e2 = await run('mkdir', [`${M}/a`])
    t.match(e2.stderr, /exists/i, 'mkdir of an existing name: EEXIST')
    const e3 = await run('cat', [`${M}/nope`])
    t.match(e3.stderr, /No such file/i, 'ENOENT')

    await ok('rm', ['-r', `${M}/a`, `${M}/t`])
    t.equal((await ok('ls', ['-A', M])).trim(), '', 'all removed')
  })

  t.test('a read-only mount refuses changes', async (t) => {
    const m = await startMemoryMount({ readOnly: true })
    t.teardown(() => m.stop())
    const r = await run('mkdir', [`${m.mnt}/x`])
    t.match(r.stderr, /read-only/i, 'EROFS')
    t.equal((await run('ls', [m.mnt])).code, 0)
  })

  t.test('no mount is left behind', async (t) => {
    t.same(await leftoverMounts(), [], 'none of this file\'s mount points is in /proc/mounts')
  })
})
