// put -> get round trips through the CLI against real servers, byte for byte; a second config
// attaches and sees the same tree; nothing a server stores contains a file name or plaintext.
import t from 'tap'
import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { TEST_USER, randomFile, run, sameTree, makeCliVolume, smallTree, tmpDir } from './cli-helpers'

const MARKER = 'EDFS-PLAINTEXT-MARKER-7c1f9e'
const SECRET_NAME = 'secret-name-quokka'

t.test('files of 0 B, 1 B, chunk-1, chunk, chunk+1 and 100 MiB (256 KiB chunks)', async (t) => {
  const v = await makeCliVolume(t, 4)
  const C = 256 * 1024
  const src = path.join(v.dir, 'src')
  const sizes = { zero: 0, one: 1, 'chunk-1': C - 1, chunk: C, 'chunk+1': C + 1, big: 100 * 1024 * 1024 }
  for (const [name, size] of Object.entries(sizes)) await randomFile(path.join(src, name), size)
  await v.ok(t, ['mkdir', '/sizes'])
  await v.ok(t, ['put', ...Object.keys(sizes).map((n) => path.join(src, n)), '/sizes'], { timeoutMs: 120_000 })

  const ls = await v.ok(t, ['ls', '-l', '/sizes'])
  for (const [name, size] of Object.entries(sizes)) t.match(ls.stdout, new RegExp(` ${size} \\S+ \\S+ ${name.replace('+', '\\+')}\\n`), `ls -l shows ${name} with ${size} bytes`)
  t.notMatch(ls.stdout, /unreadable|degraded/)

  const out = path.join(v.dir, 'out')
  await v.ok(t, ['get', '/sizes', out], { timeoutMs: 120_000 })
  t.ok(await sameTree(t, src, out), 'get returns every file byte for byte')

  // One file at a time, into an existing directory (cp rule), and cat.
  const one = path.join(v.dir, 'one')
  await run('mkdir', [one])
  await v.ok(t, ['get', '/sizes/chunk+1', one])
  t.same(await readFile(path.join(one, 'chunk+1')), await readFile(path.join(src, 'chunk+1')))
  const text = path.join(v.dir, 'hello.txt')
  await writeFile(text, 'hello, edfs\n'.repeat(1000))
  await v.ok(t, ['put', text, '/hello.txt'])
  const cat = await v.ok(t, ['cat', '/hello.txt', '/hello.txt'])
  t.equal(cat.stdout, 'hello, edfs\n'.repeat(2000), 'cat writes the files to stdout')
  t.same((await readdir(one)).filter((n) => n.includes('.part')), [], 'no temporary files left')
})

t.test('default chunk size (4 MiB): chunk-1, chunk, chunk+1', async (t) => {
  const v = await makeCliVolume(t, 3, [])
  const C = 4 * 1024 * 1024
  const src = path.join(v.dir, 'src')
  for (const [name, size] of [['a', C - 1], ['b', C], ['c', C + 1]] as const) await randomFile(path.join(src, name), size)
  await v.ok(t, ['put', src, '/d'])
  const out = path.join(v.dir, 'out')
  await v.ok(t, ['get', '/d', out])
  t.ok(await sameTree(t, src, out))
})

t.test('a tree of 2,000 small files; a second config attaches; servers hold no names or plaintext', async (t) => {
  const v = await makeCliVolume(t, 4)
  const src = path.join(v.dir, 'tree')
  await smallTree(src, 2000, MARKER)
  await randomFile(path.join(src, `${SECRET_NAME}.txt`), 0)
  const t0 = Date.now()
  await v.ok(t, ['put', src, '/t'], { timeoutMs: 120_000 })
  t.comment(`put of 2,001 files: ${Date.now() - t0} ms`)
  const out = path.join(v.dir, 'out')
  const t1 = Date.now()
  await v.ok(t, ['get', '/t', out], { timeoutMs: 120_000 })
  t.comment(`get of 2,001 files: ${Date.now() - t1} ms`)
  t.ok(await sameTree(t, src, out), 'diff -r: the tree came back byte for byte')

  // A second machine: init with another config, same servers, user and password.
  const config2 = path.join(tmpDir(t), 'other', 'config.json')
  const init2 = await v.run(['init', '--servers', v.servers.map((s) => s.url).join(','), '--user', TEST_USER.name], { config: config2 })
  t.equal(init2.code, 0, init2.stderr)
  t.match(init2.stdout, /attached to volume/)
  const ls1 = await v.ok(t, ['ls', '-R', '/t'])
  const ls2 = await v.ok(t, ['ls', '-R', '/t'], { config: config2 })
  t.equal(ls2.stdout, ls1.stdout, 'the second config sees the same tree')
  t.equal(ls1.stdout.split('\n').filter((l) => l.startsWith('file-')).length, 2000)
  const out2 = path.join(v.dir, 'out2')
  await v.ok(t, ['get', '/t/d3', out2], { config: config2 })
  t.ok(await sameTree(t, path.join(src, 'd3'), out2))

  // Nothing a server stores contains a file name or the plaintext marker.
  for (const s of v.servers) {
    for (const needle of [MARKER, SECRET_NAME, 'file-1234.bin']) {
      const r = await run('grep', ['-r', '-l', '-F', needle, s.dataDir])
      t.equal(r.code, 1, `server ${s.id}: no "${needle}" anywhere in ${s.dataDir} ${r.stdout}`)
    }
  }
  const st = await stat(path.join(out, `${SECRET_NAME}.txt`))
  t.equal(st.size, 0)
})
