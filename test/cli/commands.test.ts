// mkdir, mv, rm, ls -l/-R output, status, and the --help of every file command.
import t from 'tap'
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import { runEdfs } from '../helpers/servers'
import { makeCliVolume } from './cli-helpers'

t.test('--help of every file command has examples', async (t) => {
  for (const cmd of ['ls', 'put', 'get', 'rm', 'mkdir', 'mv', 'cat', 'status', 'gc']) {
    const r = await runEdfs([cmd, '--help'])
    t.equal(r.code, 0, cmd)
    t.match(r.stdout, /Examples:/, `${cmd} --help has examples`)
    t.match(r.stdout, /--config <file>/, `${cmd} takes --config`)
    t.match(r.stdout, /--password-stdin/, `${cmd} takes --password-stdin`)
  }
})

t.test('mkdir, mv, rm, ls, status', async (t) => {
  const v = await makeCliVolume(t, 3)
  await v.ok(t, ['mkdir', '-p', '/a/b/c', '/x'])
  t.equal((await v.run(['mkdir', '-p', '/a/b'])).code, 0, 'mkdir -p of an existing directory is fine')
  const f = path.join(v.dir, 'f.txt')
  await writeFile(f, 'twelve bytes')
  await v.ok(t, ['put', f, '/a/b/c'])
  t.equal((await v.ok(t, ['ls', '/a/b/c'])).stdout, 'f.txt\n')

  const lsl = await v.ok(t, ['ls', '-l', '/a/b/c'])
  t.match(lsl.stdout, /^-rw-r--r-- 1 \d+ \d+ 12 \d{4}-\d\d-\d\d \d\d:\d\d f\.txt\n$/, 'ls -l: mode, links, owner, group, size, mtime, name')
  const lsR = await v.ok(t, ['ls', '-R', '/a'])
  t.equal(lsR.stdout, '/a:\nb\n\n/a/b:\nc\n\n/a/b/c:\nf.txt\n')
  t.equal((await v.ok(t, ['ls', '/a/b/c/f.txt'])).stdout, '/a/b/c/f.txt\n', 'ls of a file shows the file')

  await v.ok(t, ['mv', '/a/b/c/f.txt', '/x'])
  t.equal((await v.ok(t, ['ls', '/x'])).stdout, 'f.txt\n', 'mv into a directory')
  await v.ok(t, ['mv', '/x/f.txt', '/x/g.txt'])
  await v.ok(t, ['mv', '/x', '/y'])
  t.equal((await v.ok(t, ['cat', '/y/g.txt'])).stdout, 'twelve bytes', 'renamed twice, contents intact')
  const into = await v.run(['mv', '/a', '/a/b/c'])
  t.equal(into.code, 1)
  t.match(into.stderr, /EINVAL: cannot move a directory into itself/)

  await v.ok(t, ['rm', '/y/g.txt'])
  await v.ok(t, ['rm', '-r', '/a', '/y'])
  t.equal((await v.ok(t, ['ls', '/'])).stdout, '', 'everything removed')

  const st = await v.ok(t, ['status'])
  t.match(st.stdout, /servers:\n(  up .*\n){3}/, 'three servers up')
  t.match(st.stdout, /stored in \d+ blobs/)
  t.match(st.stdout, /0 files, 1 directories/)
  t.match(st.stdout, /lease: free/)
  await v.servers[2]!.stop()
  const down = await v.ok(t, ['status'])
  t.match(down.stdout, /  DOWN /, 'a stopped server shows DOWN')
})
