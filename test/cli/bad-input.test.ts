// Bad input to the file commands: each case is refused with one clear `edfs: ...` line and exit 1,
// and changes nothing.
import t, { Test } from 'tap'
import { spawn } from 'node:child_process'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { openVolume } from '../../src/cli/volume-open'
import { remotePath } from '../../src/cli/file-commands'
import { TEST_USER, randomFile, run, makeCliVolume, tmpDir } from './cli-helpers'
import { EDFS_BIN, runEdfs } from '../helpers/servers'

t.test('remote path checks (the CLI cannot pass NUL in argv; checked here directly)', async (t) => {
  t.equal(remotePath('a//b/'), '/a/b')
  t.equal(remotePath('/'), '/')
  t.throws(() => remotePath('/a\0b'), /bad remote path .*NUL/)
  t.throws(() => remotePath('/a/../b'), /'\.\.' is not allowed/)
  t.throws(() => remotePath(`/${'x'.repeat(256)}`), /longer than 255 bytes/)
  t.equal(remotePath(`/${'é'.repeat(127)}`).length, 128, '254 bytes of UTF-8 are fine')
  t.throws(() => remotePath(`/${'é'.repeat(128)}`), /longer than 255 bytes/, '256 bytes of UTF-8 are not')
})

t.test('bad input', async (t) => {
  const v = await makeCliVolume(t, 3)
  const local = path.join(v.dir, 'local')
  await mkdir(path.join(local, 'dir'), { recursive: true })
  await writeFile(path.join(local, 'file.txt'), 'remote content\n')
  await writeFile(path.join(local, 'dir', 'inner.txt'), 'inner\n')
  await v.ok(t, ['put', path.join(local, 'file.txt'), '/file.txt'])
  await v.ok(t, ['put', path.join(local, 'dir'), '/dir'])

  const refuser = (t: Test) => async (args: string[], pattern: RegExp, what: string) => {
    const r = await v.run(args)
    t.equal(r.code, 1, `${what}: exit 1`)
    t.match(r.stderr, pattern, `${what}: ${r.stderr.trim()}`)
    t.equal(r.stderr.trim().split('\n').filter((l) => l.startsWith('edfs: ')).length, 1, `${what}: one error line`)
    t.notMatch(r.stderr, /\n\s+at /, `${what}: no stack trace`)
  }

  t.test('nonexistent paths', async (t) => {
    const refused = refuser(t)
    await refused(['ls', '/nope'], /^edfs: ENOENT: no such file or directory: \/nope$/m, 'ls')
    await refused(['cat', '/nope'], /ENOENT/, 'cat')
    await refused(['get', '/nope', path.join(v.dir, 'x')], /ENOENT/, 'get')
    await refused(['rm', '/nope'], /ENOENT/, 'rm')
    await refused(['mv', '/nope', '/other'], /ENOENT/, 'mv')
    await refused(['mkdir', '/no/such/parent'], /ENOENT/, 'mkdir without -p')
    await refused(['put', path.join(local, 'missing.txt'), '/x'], /cannot put .*missing\.txt: no such file or directory/, 'put of a missing local file')
    await refused(['put', path.join(local, 'file.txt'), '/no/such/dir/x'], /ENOENT/, 'put into a missing remote directory')
    await refused(['get', '/file.txt', path.join(v.dir, 'no', 'such', 'dir')], /does not exist/, 'get into a missing local directory')
    t.equal((await v.run(['rm', '-f', '/nope'])).code, 0, 'rm -f ignores it')
    const noPassword = await v.run(['put', path.join(local, 'missing.txt'), '/x'], { env: { EDFS_PASSWORD: '' } })
    t.match(noPassword.stderr, /cannot put .*missing\.txt: no such file or directory/, 'a missing local file is named before any password is asked for')
  })

  t.test('a file where a directory is expected, and the reverse', async (t) => {
    const refused = refuser(t)
    await refused(['ls', '/file.txt/x'], /ENOTDIR/, 'ls through a file')
    await refused(['mkdir', '/file.txt/sub'], /ENOTDIR/, 'mkdir under a file')
    await refused(['mkdir', '-p', '/file.txt/sub'], /ENOTDIR/, 'mkdir -p under a file')
    await refused(['put', path.join(local, 'file.txt'), path.join(local, 'dir'), '/file.txt'], /target \/file\.txt is not a directory/, 'several sources into a file')
    await refused(['put', '--force', path.join(local, 'dir'), '/file.txt'], /cannot overwrite non-directory \/file\.txt with directory/, 'a directory over a file')
    await refused(['cat', '/dir'], /EISDIR/, 'cat of a directory')
    await refused(['rm', '/dir'], /is a directory \(use -r\)/, 'rm of a directory without -r')
    await refused(['mv', '/dir', '/file.txt'], /ENOTDIR/, 'mv a directory over a file')
    const out = path.join(v.dir, 'rev')
    await mkdir(path.join(out, 'file.txt'), { recursive: true })
    await refused(['get', '--force', '/file.txt', out], /cannot overwrite directory .*file\.txt with non-directory/, 'get a file over a local directory')
  })

  t.test('names: too long, .. escaping', async (t) => {
    const refused = refuser(t)
    const long = 'n'.repeat(256)
    await refused(['mkdir', `/${long}`], /longer than 255 bytes/, 'mkdir of a 256-byte name')
    await refused(['put', path.join(local, 'file.txt'), `/${long}`], /longer than 255 bytes/, 'put to a 256-byte name')
    t.equal((await v.run(['mkdir', `/${'n'.repeat(255)}`])).code, 0, '255 bytes are fine')
    await refused(['put', path.join(local, 'file.txt'), '/../../etc/passwd'], /'\.\.' is not allowed/, 'put escaping with ..')
    await refused(['get', '/dir/../../etc', path.join(v.dir, 'x')], /'\.\.' is not allowed/, 'get escaping with ..')
    await refused(['ls', '..'], /'\.\.' is not allowed/, 'ls ..')
    await refused(['rm', '-r', '/'], /refusing to remove the root/, 'rm -r /')
  })

  t.test('put of an unreadable local file', async (t) => {
    const refused = refuser(t)
    const fifo = path.join(v.dir, 'fifo')
    t.equal((await run('mkfifo', [fifo])).code, 0)
    await refused(['put', fifo, '/fifo'], /cannot put .*fifo: it is a FIFO/, 'a FIFO')
    await mkdir(path.join(local, 'withfifo'))
    await run('mkfifo', [path.join(local, 'withfifo', 'p')])
    await refused(['put', path.join(local, 'withfifo'), '/withfifo'], /withfifo\/p: it is a FIFO/, 'a FIFO inside a tree')
    await refused(['put', '/proc/self/mem', '/mem'], /cannot read \/proc\/self\/mem/, 'a /proc file that fails to read')
    const ls = await v.ok(t, ['ls', '/'])
    t.notMatch(ls.stdout, /fifo|mem|withfifo/, 'nothing was created')
  })

  t.test('get/put over existing files without --force', async (t) => {
    const refused = refuser(t)
    const out = path.join(v.dir, 'existing')
    await mkdir(out)
    await writeFile(path.join(out, 'file.txt'), 'local content\n')
    await refused(['get', '/file.txt', out], /file\.txt already exists; use --force/, 'get over an existing file (into a directory)')
    await refused(['get', '/file.txt', path.join(out, 'file.txt')], /already exists; use --force/, 'get over an existing file (named)')
    t.equal(await readFile(path.join(out, 'file.txt'), 'utf8'), 'local content\n', 'the local file is untouched')
    await mkdir(path.join(out, 'dir'))
    await refused(['get', '/dir', out], /dir already exists \(a directory\); use --force/, 'get into an existing directory')
    t.same(await readdir(path.join(out, 'dir')), [], 'nothing written into it')
    await refused(['put', path.join(local, 'file.txt'), '/file.txt'], /\/file\.txt already exists in the volume \(use --force/, 'put over an existing remote file')
    await refused(['put', path.join(local, 'file.txt'), '/'], /\/file\.txt already exists in the volume/, 'put into a directory holding the name')

    await v.ok(t, ['get', '--force', '/file.txt', out])
    t.equal(await readFile(path.join(out, 'file.txt'), 'utf8'), 'remote content\n', '--force overwrites')
    await v.ok(t, ['get', '--force', '/dir', out])
    t.equal(await readFile(path.join(out, 'dir', 'inner.txt'), 'utf8'), 'inner\n', '--force merges into the directory')
    await writeFile(path.join(local, 'new.txt'), 'new content\n')
    await v.ok(t, ['put', '--force', path.join(local, 'new.txt'), '/file.txt'])
    t.equal((await v.ok(t, ['cat', '/file.txt'])).stdout, 'new content\n', 'put --force overwrites')
  })

  t.test('init against unreachable servers', async (t) => {
    const r = await runEdfs(['init', '--servers', 'http://127.0.0.1:1,http://127.0.0.1:2', '--user', TEST_USER.name, '--config', path.join(tmpDir(t), 'c.json')], {
      env: { EDFS_PASSWORD: TEST_USER.password },
    })
    t.equal(r.code, 1)
    t.match(r.stderr, /^edfs: .*no storage server answers/m)
  })

  t.test('init with replication settings that cannot work', async (t) => {
    const urls = v.servers.map((s) => s.url).join(',')
    const config = path.join(tmpDir(t), 'c.json')
    const refused = async (args: string[], pattern: RegExp, what: string) => {
      const r = await runEdfs(['init', '--servers', urls, '--user', TEST_USER.name, '--config', config, ...args], { env: { EDFS_PASSWORD: TEST_USER.password } })
      t.equal(r.code, 1, `${what}: exit 1`)
      t.match(r.stderr, pattern, `${what}: ${r.stderr.trim()}`)
      await t.rejects(readFile(config), { code: 'ENOENT' }, `${what}: no config written`)
    }
    await refused(['--replicas', '2', '--write-quorum', '3'], /^edfs: --replicas 2 --write-quorum 3: writeQuorum \(W\) must be 1\.\.2 \(R\), got 3$/m, 'W > R')
    // Attaching: the volume's head says R = 2, so a write quorum of 3 can never be met.
    await refused(['--replicas', '3', '--write-quorum', '3'], /^edfs: --replicas 2 --write-quorum 3: writeQuorum \(W\) must be 1\.\.2 \(R\), got 3$/m, 'W > the head\'s R')
  })

  t.test('wrong password', async (t) => {
    for (const cmd of [['ls', '/'], ['put', path.join(local, 'file.txt'), '/wp.txt'], ['get', '/file.txt', path.join(v.dir, 'wp')]]) {
      const r = await v.run(cmd, { env: { EDFS_PASSWORD: 'not the password' } })
      t.equal(r.code, 1, `${cmd[0]}: exit 1`)
      t.match(r.stderr, /^edfs: .*(wrong|refused)/m, `${cmd[0]}: ${r.stderr.trim()}`)
    }
    const r = await v.run(['ls', '/'], { env: { EDFS_PASSWORD: '' } })
    t.equal(r.code, 1)
    const stdin = await v.run(['ls', '/', '--password-stdin'], { input: `${TEST_USER.password}\n`, env: { EDFS_PASSWORD: 'wrong' } })
    t.equal(stdin.code, 0, '--password-stdin wins over EDFS_PASSWORD')
  })

  t.test('a foreign lease: writers are refused naming the holder, readers work', async (t) => {
    const holder = await openVolume({ config: v.config, readOnly: false, password: TEST_USER.password, holder: 'otherhost pid 4242' })
    try {
      for (const cmd of [['put', path.join(local, 'file.txt'), '/leased.txt'], ['mkdir', '/leased'], ['rm', '/file.txt'], ['mv', '/file.txt', '/f2'], ['gc']]) {
        const r = await v.run(cmd)
        t.equal(r.code, 1, `${cmd[0]} refused`)
        t.match(r.stderr, /^edfs: the volume is open for writing by otherhost pid 4242 since \d{4}-/m, `${cmd[0]}: ${r.stderr.trim()}`)
      }
      t.equal((await v.run(['ls', '/'])).code, 0, 'ls needs no lease')
      t.equal((await v.run(['cat', '/file.txt'])).code, 0, 'cat needs no lease')
      const st = await v.ok(t, ['status'])
      t.match(st.stdout, /lease: held by otherhost pid 4242/)
    } finally {
      await holder.close()
    }
    const r = await v.run(['mkdir', '/after-lease'])
    t.equal(r.code, 0, `the lease was given back: ${r.stderr}`)
  })
})

t.test('a writer interrupted with Ctrl-C removes its partial file and gives the lease back', async (t) => {
  const v = await makeCliVolume(t, 3)
  const big = path.join(v.dir, 'big')
  await randomFile(big, 96 * 1024 * 1024)
  const child = spawn(process.execPath, [EDFS_BIN, 'put', big, '/big', '--config', v.config], {
    env: { ...process.env, EDFS_PASSWORD: TEST_USER.password },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  await new Promise((r) => setTimeout(r, 1500))
  child.kill('SIGINT')
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)))
  if (code === 0) {
    t.comment('the put finished before the interrupt; nothing to check')
    return
  }
  t.equal(code, 130, `exit 130 after Ctrl-C: ${stderr.trim()}`)
  t.match(stderr, /interrupted/)
  const ls = await v.ok(t, ['ls', '/'])
  t.notMatch(ls.stdout, /big/, 'no partial file in the volume')
  const r = await v.run(['mkdir', '/next'])
  t.equal(r.code, 0, `the next writer gets the lease at once: ${r.stderr}`)
})

t.test('a broken config file: every bad field named, with where it is', async (t) => {
  const dir = tmpDir(t)
  const env = { EDFS_PASSWORD: TEST_USER.password }
  const write = async (name: string, text: string) => {
    const file = path.join(dir, name)
    await writeFile(file, text)
    return file
  }
  const notJson = await runEdfs(['ls', '/', '--config', await write('a.json', '{"format": "edfs-config",')], { env })
  t.equal(notJson.code, 1)
  t.match(notJson.stderr, /is not valid JSON/)
  const good = { format: 'edfs-config', version: 1, user: 'alice', servers: [{ url: 'http://127.0.0.1:7001' }], replicas: 2, writeQuorum: 1, timeoutMs: 30000, volumeId: 'v', chunkSize: 4194304 }
  const bad = { ...good, servers: [{ url: 'http://127.0.0.1:7001' }, { url: 'ftp://x' }], replicas: 0, chunkSize: 'big', user: '../root' }
  const r = await runEdfs(['ls', '/', '--config', await write('b.json', JSON.stringify(bad))], { env })
  t.equal(r.code, 1)
  t.match(r.stderr, /is not a valid edfs config/)
  t.match(r.stderr, /servers\[1\]\.url: an http:\/\/, https:\/\/ or s3:\/\/ member URL/, 'a bad server URL, by position')
  t.match(r.stderr, /replicas: .*(>=|at least|too small)/i, 'replicas out of range')
  t.match(r.stderr, /chunkSize: /, 'chunk size of the wrong type')
  t.match(r.stderr, /user: a user name/, 'a bad user name')
  const newer = await runEdfs(['ls', '/', '--config', await write('c.json', JSON.stringify({ ...good, version: 2 }))], { env })
  t.match(newer.stderr, /version: /, 'an unknown version is named')
})
