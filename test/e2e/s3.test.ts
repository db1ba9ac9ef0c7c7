// Volumes on a real S3 store: a one-node Ceph cluster (radosgw on 127.0.0.1) started here.
// The CLI (put/get/ls/fsck/gc) and a mount (cp -r, sqlite, kill -9 after fsync) on a bucket with
// R = 1; 8 racing record writers (one wins); the gateway stopped (EIO within the timeout, then
// resume); a mixed volume (2 servers + the bucket, R = 2) with one of each killed in turn; and
// nothing readable in the bucket.
import t from 'tap'
import type { Test } from 'tap'
import { createHash } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import * as path from 'node:path'
import { Cluster } from '../../src/cluster'
import { Ceph, cephForTest, cephInstalled } from '../helpers/ceph'
import { runEdfs } from '../helpers/servers'
import { CMD_TIMEOUT, alive, daemonLog, fuseMountsUnder, fuseUnavailable, leftoverMounts, makeVolume, mountVolume, run, shell, sleep, waitFor } from './support'

const REPO = path.resolve(__dirname, '../../..')
/** A name and a line that must never appear in the bucket, in any object's key or bytes. */
const SECRET_NAME = 'quarterly-salaries-SECRETNAME'
const SECRET_TEXT = 'the plaintext marker PLAINTEXT-7f3a that only the files hold'

async function main(): Promise<void> {
  const fuse = fuseUnavailable()
  if (!(await cephInstalled()) || fuse) {
    const why = fuse ?? 'Ceph is not installed (bash scripts/setup.sh --test installs it)'
    if (process.env.CI) t.fail(`S3 tests cannot run under CI: ${why}`)
    else t.pass(`skipped: ${why}`)
    return
  }
  const ceph = await cephForTest(t)
  t.comment(`radosgw at ${ceph.endpoint}`)
  const local = await mkdtemp(path.join(tmpdir(), 'edfs-s3-local-'))
  t.teardown(() => rm(local, { recursive: true, force: true }))

  t.test('the CLI on one bucket (R = 1)', async (t) => {
    await ceph.createBucket('edfs-cli')
    const vol = await makeVolume(t, { servers: 0, replicas: 1, chunkSize: '256KiB', members: [ceph.memberUrl('edfs-cli', 'vol')], env: ceph.env })
    const edfs = (args: string[]) => runEdfs([...args, '--config', vol.cfg], { env: vol.env, timeoutMs: 120_000 })
    const big = path.join(local, 'big.bin')
    await shell(`head -c 3000000 /dev/urandom > ${big}`)
    await writeFile(path.join(local, `${SECRET_NAME}.txt`), `${SECRET_TEXT}\n`.repeat(100))
    for (const [from, to] of [[big, '/big.bin'], [path.join(local, `${SECRET_NAME}.txt`), `/${SECRET_NAME}.txt`]]) {
      const put = await edfs(['put', from!, to!])
      t.equal(put.code, 0, `put ${to}: ${put.stderr}`)
    }
    const ls = await edfs(['ls', '-l', '/'])
    t.match(ls.stdout, /big\.bin/, 'ls shows the files')
    t.match(ls.stdout, new RegExp(SECRET_NAME))
    const got = path.join(local, 'big.got')
    t.equal((await edfs(['get', '/big.bin', got])).code, 0, 'get')
    t.equal((await run('cmp', [big, got])).code, 0, 'the bytes come back')
    const fsck = await edfs(['fsck', '--verify'])
    t.equal(fsck.code, 0, `fsck --verify: ${fsck.stdout}${fsck.stderr}`)
    t.match(fsck.stdout, / 0 missing/, fsck.stdout.trim())
    const status = await edfs(['status'])
    t.match(status.stdout, /capacity 1\.00 PiB \(configured/, 'status says the capacity is configured')
    const before = (await ceph.objects('edfs-cli')).length
    t.equal((await edfs(['rm', '/big.bin'])).code, 0, 'rm')
    const gc = await edfs(['gc', '--grace', '0'])
    t.equal(gc.code, 0, `gc: ${gc.stderr}`)
    t.match(gc.stdout, /freed: [1-9]\d* blobs/, gc.stdout.trim().split('\n').at(-1) ?? '')
    const after = (await ceph.objects('edfs-cli')).length
    t.ok(after < before, `the bucket lost objects: ${before} -> ${after}`)
  })

  t.test('a mount on one bucket: cp -r, sqlite, kill -9 after fsync', async (t) => {
    await ceph.createBucket('edfs-mount')
    const vol = await makeVolume(t, { servers: 0, replicas: 1, chunkSize: '1MiB', members: [ceph.memberUrl('edfs-mount')], env: ceph.env })
    let m = await mountVolume(t, vol)
    const M = m.mnt
    const cp = await run('cp', ['-r', `${REPO}/src`, `${M}/src`], { timeoutMs: CMD_TIMEOUT })
    t.equal(cp.code, 0, `cp -r src: ${cp.stderr}`)
    t.equal((await run('diff', ['-r', `${REPO}/src`, `${M}/src`], { timeoutMs: CMD_TIMEOUT })).code, 0, 'diff -r: the same tree')
    await writeFile(path.join(M, `${SECRET_NAME}.md`), `${SECRET_TEXT}\n`)
    const sql = 'PRAGMA journal_mode=WAL; CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT);' +
      Array.from({ length: 200 }, (_, i) => `BEGIN; INSERT INTO t(v) VALUES ('row ${i}'); COMMIT;`).join('')
    const db = await run('sqlite3', [`${M}/db.sqlite`, sql], { timeoutMs: CMD_TIMEOUT })
    t.equal(db.code, 0, `200 sqlite transactions: ${db.stderr}`)
    const check = await run('sqlite3', [`${M}/db.sqlite`, 'PRAGMA integrity_check; SELECT count(*) FROM t;'])
    t.equal(check.stdout, 'ok\n200\n', 'integrity ok, 200 rows')

    const py = `
import os
fd = os.open('${M}/synced.bin', os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b'durable ' * 300000)
os.fsync(fd)
print('synced', flush=True)
`
    t.equal((await run('python3', ['-c', py])).stdout, 'synced\n', 'written and fsynced')
    process.kill(m.pid, 'SIGKILL')
    t.ok(await waitFor(5000, async () => !alive(m.pid), 50), 'the daemon is killed -9')
    m = await m.remount()
    const sum = (await run('sha256sum', [`${M}/synced.bin`])).stdout.split(' ')[0]
    t.equal(sum, createHash('sha256').update(Buffer.from('durable '.repeat(300000))).digest('hex'), 'the fsynced file is there after the crash')
    t.equal((await run('sqlite3', [`${M}/db.sqlite`, 'SELECT count(*) FROM t;'])).stdout, '200\n', 'and the database')
    const u = await m.umount()
    t.equal(u.code, 0, `umount: ${u.stderr}`)

    const objects = await ceph.objects('edfs-mount')
    t.ok(objects.length > 10, `${objects.length} objects in the bucket`)
    const leaks = objects.filter((o) => o.key.includes(SECRET_NAME) || o.key.includes('src') || o.body.includes(SECRET_NAME) || o.body.includes('PLAINTEXT-7f3a') || o.body.includes('durable durable') || o.body.includes('SQLite format'))
    t.same(leaks.map((o) => o.key), [], 'no object key or body holds a file name, a file\'s text or a database header')
    const keys = objects.map((o) => o.key.replace(/[0-9a-f]{32,64}$/, 'ID'))
    // The record names are the servers' too: the key file's, and opaque ones (head, lease, ...) derived from the names key.
    t.same([...new Set(keys)].sort(), ['blobs/ID', 'cas-check', 'member-id', 'records/keyfile', 'records/v1-ID'], 'keys are opaque ids under blobs/ and records/')
  })

  // The later rounds all write the same bytes: a store's ETag is the MD5 of the body, so the record
  // must carry a tag of its own, or a stale If-Match would pass against an equal body (ABA).
  t.test('8 record writers race: exactly one wins, also when they write the same bytes', async (t) => {
    await ceph.createBucket('edfs-race')
    Object.assign(process.env, ceph.env)
    const cluster = await Cluster.connect({ servers: [ceph.memberUrl('edfs-race')], user: 'alice', password: 'unused', replicas: 1 })
    t.teardown(() => cluster.close())
    const id = cluster.members()[0]!.id!
    for (let expect = 0; expect < 8; expect++) {
      const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => cluster.casRecord(id, 'a'.repeat(32), expect, Buffer.from(expect < 4 ? `writer ${i}` : 'the same bytes'))))
      const won = results.filter((r) => r.status === 'fulfilled')
      const lost = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as { code?: string; body?: { version?: number } }] : []))
      t.equal(won.length, 1, `version ${expect} -> ${expect + 1}: one writer wins`)
      if (won.length !== 1) t.comment(results.map((r) => (r.status === 'fulfilled' ? `won: ${r.value}` : `lost: ${(r.reason as Error).message}`)).join('\n'))
      t.same(lost.map((e) => e.code), Array(7).fill('version-conflict'), 'the other 7 see a version conflict')
      t.same(lost.map((e) => e.body?.version), Array(7).fill(expect + 1), 'naming the version that won')
    }
    const copies = await cluster.readRecordEverywhere('a'.repeat(32))
    t.equal(copies[0]?.version, 8, 'the record is at version 8')
    t.equal(copies[0]?.value?.toString(), 'the same bytes', 'holding the value written, without the store\'s header')
  })

  t.test('ranges from the bucket are read into recycled memory, lent to the check only', async (t) => {
    await ceph.createBucket('edfs-ranges')
    Object.assign(process.env, ceph.env)
    const cluster = await Cluster.connect({ servers: [ceph.memberUrl('edfs-ranges')], user: 'alice', password: 'unused', replicas: 1 })
    t.teardown(() => cluster.close())
    const data = Buffer.alloc(3 * 1024 * 1024, 7)
    data.write('a marker at the start of the range', 1000)
    const id = createHash('sha256').update(data).digest('hex')
    await cluster.put(id, data)
    const seen: ArrayBufferLike[] = []
    for (let round = 0; round < 2; round++) {
      const copy = await cluster.getRange(id, { start: 1000, end: 2_000_000 }, (bytes) => {
        seen.push(bytes.buffer)
        return Buffer.from(bytes)
      })
      t.ok(copy.equals(data.subarray(1000, 2_000_000)), `round ${round}: the bytes`)
    }
    t.equal(seen[1], seen[0], 'the second answer went into the memory the first gave back')
  })

  t.test('a stale writer is refused although the record holds the same bytes again (no ABA)', async (t) => {
    await ceph.createBucket('edfs-aba')
    Object.assign(process.env, ceph.env)
    const connect = () => Cluster.connect({ servers: [ceph.memberUrl('edfs-aba')], user: 'alice', password: 'unused', replicas: 1 })
    const [a, b] = [await connect(), await connect()]
    t.teardown(() => Promise.all([a.close(), b.close()]))
    const id = a.members()[0]!.id!
    const name = 'b'.repeat(32)
    const same = Buffer.from('the same sealed bytes')
    t.equal(await a.casRecord(id, name, 0, same), 1, 'A creates version 1')
    t.equal(await a.casRecord(id, name, 1, same), 2, 'A replaces it with version 2 (and remembers its ETag)')
    t.equal(await b.casRecord(id, name, 2, same), 3, 'B replaces that with version 3, byte for byte the same')
    const stale = await a.casRecord(id, name, 2, same).then(() => null, (err: { code?: string; body?: { version?: number } }) => err)
    t.equal(stale?.code, 'version-conflict', 'A, still expecting version 2, gets a version conflict')
    t.equal(stale?.body?.version, 3, 'naming version 3')
    t.equal((await b.readRecordEverywhere(name))[0]?.version, 3, 'the record stays at version 3')
  })

  t.test('the gateway stopped: EIO within the timeout, then resume', async (t) => {
    await ceph.createBucket('edfs-down')
    const vol = await makeVolume(t, { servers: 0, replicas: 1, chunkSize: '1MiB', timeoutMs: 3000, members: [ceph.memberUrl('edfs-down')], env: ceph.env })
    let m = await mountVolume(t, vol, { diskCacheSize: '0' })
    const M = m.mnt
    t.equal((await shell(`head -c 3000000 /dev/urandom > ${M}/f1 && cp ${M}/f1 ${vol.dir}/f1.ref`)).code, 0, 'a file')
    t.equal((await m.umount()).code, 0)
    m = await m.remount() // nothing cached
    await stopGateway(t, ceph)
    const cat = await run('cat', [`${M}/f1`], { timeoutMs: 60_000 })
    t.match(cat.stderr, /Input\/output error/, `EIO: ${cat.stderr.trim()}`)
    t.ok(cat.ms < 2 * 3000 + 3000, `within the 3 s timeout (the kernel retries once): ${cat.ms} ms`)
    await ceph.startGateway()
    const back = await waitFor(60_000, async () => (await run('cmp', [`${M}/f1`, `${vol.dir}/f1.ref`], { timeoutMs: 20_000 })).code === 0, 500)
    t.ok(back, 'after the gateway is back the file reads correctly')
    const w = await run('python3', ['-c', `f = open('${M}/after', 'w'); f.write('after\\n'); f.close(); print(open('${M}/after').read(), end='')`], { timeoutMs: 60_000 })
    t.equal(w.stdout, 'after\n', `and writes again ${w.stderr}`)
    const u = await m.umount()
    t.equal(u.code, 0, `umount (commits): ${u.stderr}`)
  })

  t.test('a mixed volume: 2 servers + the bucket, R = 2, one of each killed in turn', async (t) => {
    await ceph.createBucket('edfs-mixed')
    const vol = await makeVolume(t, { servers: 2, replicas: 2, chunkSize: '256KiB', timeoutMs: 5000, members: [ceph.memberUrl('edfs-mixed')], env: ceph.env })
    const m = await mountVolume(t, vol, { diskCacheSize: '0', cacheSize: '32MiB' })
    const M = m.mnt
    const step = async (label: string, name: string) => {
      const w = await shell(`head -c 2000000 /dev/urandom > ${vol.dir}/${name}.ref && cp ${vol.dir}/${name}.ref ${M}/${name} && python3 -c "import os; fd = os.open('${M}/${name}', os.O_RDONLY); os.fsync(fd)"`, { timeoutMs: CMD_TIMEOUT })
      t.equal(w.code, 0, `${label}: a 2 MB file written and fsynced ${w.stderr}`)
    }
    await step('all up', 'a')
    const server = vol.servers[0]!
    await server.kill9()
    await step(`server ${server.id.slice(0, 8)} killed`, 'b')
    await server.restart()
    await stopGateway(t, ceph, 'SIGKILL')
    await step('radosgw killed', 'c')
    await ceph.startGateway()
    const fsck = await runEdfs(['fsck', '--repair', '--config', vol.cfg], { env: vol.env, timeoutMs: CMD_TIMEOUT })
    t.equal(fsck.code, 0, `fsck --repair: ${fsck.stdout}${fsck.stderr}`)
    const u = await m.umount()
    t.equal(u.code, 0, `umount: ${u.stderr}`)
    const again = await m.remount()
    for (const name of ['a', 'b', 'c']) {
      t.equal((await run('cmp', [`${vol.dir}/${name}.ref`, `${again.mnt}/${name}`])).code, 0, `${name} reads back intact`)
    }
    // Each of the three members in turn is the only one stopped: everything still reads.
    await vol.servers[1]!.stop()
    t.equal((await run('cmp', [`${vol.dir}/a.ref`, `${again.mnt}/a`])).code, 0, 'a reads with a server stopped')
    await vol.servers[1]!.restart()
    t.equal((await again.umount()).code, 0)
    if (t.passing() === false) t.comment(await daemonLog(vol, M, 60))
  })

  t.test('no mount is left behind', async (t) => {
    t.same(await leftoverMounts(), [])
    t.same(await fuseMountsUnder(local), [])
  })
}

async function stopGateway(t: Test, ceph: Ceph, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  await ceph.stopGateway(signal)
  t.teardown(() => ceph.startGateway().catch(() => undefined))
  await sleep(100)
}

void main()
