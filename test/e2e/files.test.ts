// Ordinary programs on a real edfs mount over 4 real servers (R = 2, 1 MiB chunks): cp -r and tar
// round trips, random-offset writes against a reference file, truncate, rename over files and
// directories, hard links, symlinks, git, sqlite3, a directory of 10,000 entries — then umount and
// mount again, and everything (attributes included) is still there.
import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import * as path from 'node:path'
import { CMD_TIMEOUT, fuseMountsUnder, withFuse, leftoverMounts, makeVolume, mountVolume, run, shell, sleep } from './support'

const REPO = path.resolve(__dirname, '../../..')

// pwrite at seeded random offsets, same sequence on every path given: python3 randwrite.py SEED PATH...
const RANDWRITE = `
import os, random, sys
seed = int(sys.argv[1])
for p in sys.argv[2:]:
    rnd = random.Random(seed)
    fd = os.open(p, os.O_CREAT | os.O_RDWR, 0o644)
    for i in range(300):
        off = rnd.randrange(0, 6 * 1024 * 1024)
        n = rnd.randrange(1, 200 * 1024)
        os.pwrite(fd, rnd.randbytes(n), off)
        if i == 150:
            os.fsync(fd)
    os.close(fd)
`

// 10,000 directory entries: 1,000 files (created from 50 threads, so their closes share commits),
// 3,000 hard links, 3,000 symlinks, 3,000 directories.
const MANY = `
import os, sys, threading
d = sys.argv[1]
os.mkdir(d)
def files(k):
    for i in range(k, 1000, 50):
        with open(os.path.join(d, 'f%05d' % i), 'wb') as f:
            f.write(b'x' * (i % 7))
ts = [threading.Thread(target=files, args=(k,)) for k in range(50)]
[x.start() for x in ts]
[x.join() for x in ts]
for i in range(3000):
    os.link(os.path.join(d, 'f%05d' % (i % 1000)), os.path.join(d, 'h%05d' % i))
    os.symlink('f%05d' % (i % 1000), os.path.join(d, 's%05d' % i))
    os.mkdir(os.path.join(d, 'd%05d' % i))
`

withFuse(() => {
  t.test('programs on a mount over 4 servers', async (t) => {
    const vol = await makeVolume(t, { chunkSize: '1MiB' })
    const local = await mkdtemp(path.join(tmpdir(), 'edfs-e2e-local-'))
    t.teardown(() => rm(local, { recursive: true, force: true }))
    // A snapshot of the trees: others edit this work tree while the test runs.
    const SRC = `${local}/snap`
    const snap = await shell(`mkdir -p ${SRC}/node_modules && cp -r ${REPO}/src ${REPO}/package.json ${SRC}/ && cp -r ${REPO}/node_modules/commander ${SRC}/node_modules/`)
    if (snap.code !== 0) throw new Error(`snapshot of the source trees: ${snap.stderr}`)
    let m = await mountVolume(t, vol)
    const M = m.mnt
    const ok = async (script: string, what = script, timeoutMs = CMD_TIMEOUT) => {
      const r = await shell(script, { timeoutMs })
      t.equal(r.code, 0, `${what} (${r.ms} ms)${r.code === 0 ? '' : `: ${r.stderr.trim().slice(0, 2000)} ${r.stdout.trim().slice(0, 2000)}`}`)
      return r.stdout
    }

    await t.test('cp -r of source trees in and out, diff -r equal', async () => {
      await ok(`cp -r ${SRC}/src ${M}/src && cp -r ${SRC}/node_modules/commander ${M}/commander`, 'cp -r src and node_modules/commander in')
      await ok(`diff -r ${SRC}/src ${M}/src && diff -r ${SRC}/node_modules/commander ${M}/commander`, 'diff -r equal')
      await ok(`cp -r ${M}/src ${local}/src-out && diff -r ${SRC}/src ${local}/src-out`, 'cp -r out, diff -r equal')
    })

    await t.test('tar c/x round trip', async () => {
      await ok(`mkdir ${M}/tarred && tar cf - -C ${SRC} src package.json | tar xf - -C ${M}/tarred`, 'tar x onto the mount')
      await ok(`mkdir ${local}/untar && tar cf - -C ${M}/tarred . | tar xf - -C ${local}/untar`, 'tar c from the mount')
      await ok(`diff -r ${SRC}/src ${local}/untar/src && cmp ${SRC}/package.json ${local}/untar/package.json`, 'equal after the round trip')
    })

    await t.test('random-offset writes match a reference file', async () => {
      await ok(`python3 -c '${RANDWRITE}' 7 ${M}/random.bin ${local}/random.ref`, '300 pwrites at random offsets on both')
      await ok(`cmp ${M}/random.bin ${local}/random.ref`, 'cmp equal')
      await ok(`python3 -c '${RANDWRITE}' 8 ${M}/random.bin ${local}/random.ref && cmp ${M}/random.bin ${local}/random.ref`, 'overwritten at other offsets: still equal')
    })

    await t.test('truncate up and down', async () => {
      await ok(`head -c 3000000 /dev/urandom > ${local}/trunc.ref && cp ${local}/trunc.ref ${M}/trunc`, '3 MB file')
      for (const size of ['5M', '1234567', '2M', '0', '100']) {
        await ok(`truncate -s ${size} ${M}/trunc && truncate -s ${size} ${local}/trunc.ref && cmp ${M}/trunc ${local}/trunc.ref`, `truncate -s ${size}: equal (zeros past the old end)`)
      }
      await ok(`head -c 3000000 /dev/urandom > ${local}/t2.ref && cp ${local}/t2.ref ${M}/t2 && python3 -c "
import os
for p in ['${M}/t2', '${local}/t2.ref']:
    fd = os.open(p, os.O_RDWR); os.ftruncate(fd, 1500000); os.pwrite(fd, b'end', 2500000); os.close(fd)" && cmp ${M}/t2 ${local}/t2.ref`, 'ftruncate down then write past the end: the gap reads as zeros')
    })

    await t.test('rename over an existing file and directory', async () => {
      await ok(`cd ${M} && echo one > r1 && echo two > r2 && mv r1 r2`, 'mv over a file')
      t.equal(await ok(`cat ${M}/r2`), 'one\n')
      t.equal((await shell(`ls ${M}/r1`)).code, 2, 'the old name is gone')
      await ok(`cd ${M} && mkdir -p da/sub && echo in > da/sub/f && mkdir db && python3 -c "import os; os.rename('da', 'db')"`, 'rename a directory over an empty one')
      t.equal(await ok(`cat ${M}/db/sub/f`), 'in\n')
      const r = await shell(`cd ${M} && mkdir dc && python3 -c "import os; os.rename('dc', 'db')"`)
      t.match(r.stderr, /Directory not empty/, 'over a non-empty directory: ENOTEMPTY')
      const r2 = await shell(`cd ${M} && python3 -c "import os; os.rename('dc', 'r2')"`)
      t.match(r2.stderr, /Not a directory/, 'a directory over a file: ENOTDIR')
      const r3 = await shell(`cd ${M} && python3 -c "import os; os.rename('r2', 'dc')"`)
      t.match(r3.stderr, /Is a directory/, 'a file over a directory: EISDIR')
    })

    await t.test('hard links share data and nlink', async () => {
      await ok(`cd ${M} && echo first > h1 && ln h1 h2 && echo more >> h2`, 'ln, append through the second name')
      t.equal(await ok(`cat ${M}/h1`), 'first\nmore\n', 'the first name sees it')
      await sleep(1100) // each name has its own kernel inode (libfuse 2 path API): attributes cached 1 s
      t.equal((await ok(`stat -c %h ${M}/h1 ${M}/h2`)).trim(), '2\n2')
      await ok(`rm ${M}/h1`)
      await sleep(1100)
      t.equal((await ok(`stat -c %h ${M}/h2`)).trim(), '1')
      t.equal(await ok(`cat ${M}/h2`), 'first\nmore\n')
    })

    await t.test('symlinks', async () => {
      await ok(`cd ${M} && ln -s src/cli sl-dir && ln -s ../r2 db/sl-up && ln -s nowhere sl-dangling`)
      t.equal((await ok(`readlink ${M}/sl-dir ${M}/db/sl-up`)).trim(), 'src/cli\n../r2')
      t.equal(await ok(`cat ${M}/db/sl-up`), 'one\n', 'read through a relative link')
      t.match(await ok(`ls ${M}/sl-dir/`), /main\.ts/, 'a link to a directory')
      t.match(await ok(`ls -l ${M}/sl-dangling`), /sl-dangling -> nowhere/)
      t.match((await shell(`cat ${M}/sl-dangling`)).stderr, /No such file/, 'dangling: ENOENT')
      t.equal((await ok(`stat -c %F ${M}/sl-dir`)).trim(), 'symbolic link')
    })

    const attrFiles = `${M}/attr/f ${M}/attr/d ${M}/attr/l`
    let attrsBefore = ''
    await t.test('chmod, chown, touch -d', async () => {
      await ok(`mkdir ${M}/attr && echo x > ${M}/attr/f && mkdir ${M}/attr/d && ln -s f ${M}/attr/l`)
      await ok(`chmod 640 ${M}/attr/f && chmod 1750 ${M}/attr/d && chown 1234:5678 ${M}/attr/f && chown -h 4321:8765 ${M}/attr/l && chgrp 99 ${M}/attr/d`)
      await ok(`touch -d '2001-02-03 04:05:06.789' ${M}/attr/f && touch -d '1999-12-31 23:59:59' ${M}/attr/d`)
      attrsBefore = await ok(`stat -c '%n %a %u %g %.3Y %.3X %s %F' ${attrFiles}`)
      t.match(attrsBefore, /attr\/f 640 1234 5678 981173106\.789 981173106\.789 2 regular file/)
      t.match(attrsBefore, /attr\/d 1750 0 99 946684799\.000 946684799\.000 \d+ directory/)
      t.match(attrsBefore, /attr\/l 777 4321 8765 /)
    })

    await t.test('git init, add, commit, fsck', async () => {
      const git = `git -c user.name=e2e -c user.email=e2e@example.invalid -c init.defaultBranch=main`
      await ok(`mkdir ${M}/repo && cd ${M}/repo && ${git} init -q && cp -r ${SRC}/src . && ${git} add -A && ${git} commit -qm first && echo change >> src/cli/main.ts && ${git} commit -qam second && ${git} gc -q`, 'git init, add, 2 commits, gc')
      await ok(`cd ${M}/repo && git fsck --full --strict`, 'git fsck')
      t.equal((await ok(`cd ${M}/repo && git log --oneline | wc -l`)).trim(), '2')
    })

    await t.test('ls -l of a directory with 10,000 entries', async () => {
      await ok(`python3 -c "${MANY}" ${M}/many`, 'create 1,000 files, 3,000 hard links, 3,000 symlinks, 3,000 directories', CMD_TIMEOUT)
      await sleep(1100) // hard links: each name has its own kernel inode, whose nlink is cached 1 s
      const r = await shell(`ls -l ${M}/many`)
      t.equal(r.code, 0, `ls -l (${r.ms} ms)`)
      const lines = r.stdout.split('\n').filter((l) => l && !l.startsWith('total'))
      t.equal(lines.length, 10_000, '10,000 entries listed')
      t.equal(lines.filter((l) => l.startsWith('d')).length, 3000, '3,000 directories')
      t.equal(lines.filter((l) => l.startsWith('l')).length, 3000, '3,000 symlinks')
      const links = new Map<string, number>()
      for (const l of lines.filter((l) => l.startsWith('-'))) links.set(l.split(/\s+/)[1]!, (links.get(l.split(/\s+/)[1]!) ?? 0) + 1)
      t.same([...links], [['4', 4000]], '4,000 names of files with 4 links each')
      t.comment(`ls -l of 10,000 entries: ${r.ms} ms`)
    })

    await t.test('sqlite3: 1,000 transactions', async () => {
      // 30 transactions in the default rollback-journal mode with synchronous=FULL (journal created,
      // fsynced and deleted each time), then 1,000 in WAL mode (exclusive locking: no shared memory).
      const tx = (n: number, from: number) =>
        Array.from({ length: n }, (_, i) => `BEGIN; INSERT INTO t(v, pad) VALUES (${from + i}, randomblob(${(i * 37) % 3000})); UPDATE s SET total = total + ${from + i}; COMMIT;`).join('\n')
      const sql1 = `CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER, pad BLOB); CREATE TABLE s(total INTEGER); INSERT INTO s VALUES (0);\n${tx(30, 0)}\n`
      let r = await run('sqlite3', [`${M}/db.sqlite`], { input: sql1, timeoutMs: CMD_TIMEOUT })
      t.equal(r.code, 0, `30 rollback-journal transactions (${r.ms} ms) ${r.stderr}`)
      const sql2 = `PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL;\n${tx(1000, 30)}\nPRAGMA wal_checkpoint(TRUNCATE);\n`
      r = await run('sqlite3', [`${M}/db.sqlite`], { input: sql2, timeoutMs: CMD_TIMEOUT })
      t.equal(r.code, 0, `1,000 WAL transactions (${r.ms} ms) ${r.stderr}`)
      t.comment(`sqlite3: 1,000 WAL transactions in ${r.ms} ms`)
    })

    await t.test('umount and mount again: everything is still there', async () => {
      const u = await m.umount()
      t.equal(u.code, 0, `edfs umount: ${u.stderr}`)
      t.same(await fuseMountsUnder(M), [], 'unmounted')
      m = await m.remount()
      t.equal(await ok(`stat -c '%n %a %u %g %.3Y %.3X %s %F' ${attrFiles}`), attrsBefore, 'mode, owner, group, mtime, atime, size, type kept')
      await ok(`cmp ${M}/random.bin ${local}/random.ref`, 'random-offset file equal to the reference')
      await ok(`diff -r ${SRC}/src ${M}/src && diff -r ${SRC}/node_modules/commander ${M}/commander`, 'trees equal')
      const q = await run('sqlite3', [`${M}/db.sqlite`, 'PRAGMA integrity_check; SELECT count(*), sum(v) FROM t; SELECT total FROM s;'], { timeoutMs: 60_000 })
      t.equal(q.stdout, `ok\n1030|${(1029 * 1030) / 2}\n${(1029 * 1030) / 2}\n`, `PRAGMA integrity_check = ok, 1,030 rows ${q.stderr}`)
      await ok(`cd ${M}/repo && git fsck --full --strict && git status --porcelain | wc -l | grep -qx 0`, 'git fsck and a clean work tree')
      t.equal((await ok(`ls ${M}/many | wc -l`)).trim(), '10000')
      const cold = await shell(`ls -l ${M}/many > /dev/null`)
      t.comment(`ls -l of 10,000 entries after remount: ${cold.ms} ms`)
    })
  })

  t.test('no mount is left behind', async (t) => {
    t.same(await leftoverMounts(), [], 'none of this file\'s mount points is in /proc/mounts')
  })
})
