// POSIX details through a real edfs mount (daemon in its own process, --allow-other), many of them
// as an unprivileged user (uid 65534 via setpriv): sizes at and past the largest file size, FIFOs,
// device nodes and Unix sockets, hard-link identity and fresh attributes, one-sided times, user.*
// extended attributes, fallocate — and all of it again after a remount; edfs ls and get beside it.
import t from 'tap'
import { readFile } from 'node:fs/promises'
import { runEdfs } from '../helpers/servers'
import { CMD_TIMEOUT, daemonLog, withFuse, leftoverMounts, makeVolume, mountVolume, run, type RunResult } from './support'

const MAX = 2 ** 44 // MAX_FILE_SIZE
const NOBODY = 65534

/**
 * sh -c SCRIPT as root, or as uid/gid 65534 with no supplementary groups. The test runner's
 * NODE_OPTIONS (its loaders, inside a checkout that user may not read) stay behind.
 */
function sh(script: string, asNobody = false): Promise<RunResult> {
  if (!asNobody) return run('sh', ['-c', script], { timeoutMs: CMD_TIMEOUT })
  return run('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'env', '-u', 'NODE_OPTIONS', 'sh', '-c', script], { timeoutMs: CMD_TIMEOUT })
}

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024
}

// getxattr(2) with a too-small buffer must fail with ERANGE (prints the errno).
const GETXATTR_SMALL = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(2)
n = libc.getxattr(sys.argv[1].encode(), sys.argv[2].encode(), buf, 2)
print(n if n >= 0 else -ctypes.get_errno())
`

// A Unix socket bound on the mount: a server and a client in one process, one line echoed (exit
// without close: closing the server would unlink the socket file).
const UNIX_SOCKET = `
const net = require('net'); const p = process.argv[1];
const srv = net.createServer((c) => c.on('data', (d) => { c.end('echo:' + d) }));
srv.listen(p, () => { const c = net.connect(p, () => c.write('ping')); c.on('data', (d) => { console.log(String(d)); process.exit(0) }) });
`

withFuse(() => {
  t.test('POSIX through the mount', async (t) => {
    const vol = await makeVolume(t, { chunkSize: '1MiB' })
    let m = await mountVolume(t, vol, { allowOther: true })
    const M = m.mnt
    const U = `${M}/u` // nobody's directory
    const ok = async (script: string, asNobody = false): Promise<string> => {
      const r = await sh(script, asNobody)
      t.equal(r.code, 0, `${asNobody ? '(uid 65534) ' : ''}${script}${r.stderr ? `: ${r.stderr.trim()}` : ''}`)
      return r.stdout.trim()
    }
    const fails = async (script: string, message: RegExp, asNobody = false): Promise<void> => {
      const r = await sh(script, asNobody)
      t.not(r.code, 0, `fails: ${script}`)
      t.match(r.stderr, message, `${script}: ${message}`)
    }
    await ok(`mkdir ${U} && chown ${NOBODY}:${NOBODY} ${U}`)

    t.test('sizes: the largest file size and one byte past it, as an unprivileged user', async (t) => {
      await fails(`truncate -s 999999999999999 ${U}/huge`, /File too large/, true)
      await ok(`truncate -s ${MAX} ${U}/huge`, true)
      t.equal(await ok(`stat -c %s ${U}/huge`, true), String(MAX), 'a 16 TiB sparse file')
      await fails(`truncate -s ${MAX + 1} ${U}/huge`, /File too large/, true)
      await ok(`dd if=/dev/zero of=${U}/last bs=1 count=1 seek=${MAX - 1} conv=notrunc status=none`, true)
      t.equal(await ok(`stat -c %s ${U}/last`, true), String(MAX), 'a write at the last legal offset')
      await fails(`dd if=/dev/zero of=${U}/last bs=1 count=1 seek=${MAX} conv=notrunc status=none`, /File too large/, true)
      await ok(`printf tail | dd of=${U}/last bs=1 seek=${MAX - 4} conv=notrunc status=none`, true)
      t.equal(await ok(`tail -c 4 ${U}/last`, true), 'tail', 'the last bytes of the largest file read back')
      t.equal(await ok(`head -c 100000 ${U}/huge | tr -d '\\000' | wc -c`, true), '0', 'holes read as zeros')
      await fails(`python3 -c "import os; fd = os.open('${U}/last', os.O_WRONLY); os.pwrite(fd, b'x', ${MAX})"`, /File too large/, true)
      await ok(`truncate -s ${MAX - 2} ${U}/edge`, true)
      t.equal(await ok(`python3 -c "import os; fd = os.open('${U}/edge', os.O_WRONLY); print(os.pwrite(fd, b'abcdef', ${MAX - 2}))"`, true), '2', 'a write across the limit is cut short')
      t.equal(await ok(`tail -c 2 ${U}/edge`, true), 'ab', 'with the bytes before the limit written')
      // A symlink target of the longest length Linux passes.
      const target = 'a'.repeat(4095)
      await ok(`ln -s ${target} ${U}/longlink`, true)
      t.equal((await ok(`readlink ${U}/longlink`, true)).length, 4095, 'a 4095-byte symlink target')
      t.equal(await ok(`ls ${M} >/dev/null && echo alive`), 'alive', 'the mount is still healthy')
      const rss = await rssMiB(m.pid)
      t.ok(rss < 600, `the daemon's RSS stays small after a 16 TiB truncate (${rss.toFixed(0)} MiB)`)
    })

    t.test('FIFOs, Unix sockets and device nodes', async (t) => {
      await ok(`mkfifo -m 0640 ${U}/fifo`, true)
      t.equal(await ok(`stat -c '%F %a %u' ${U}/fifo`, true), `fifo 640 ${NOBODY}`)
      const through = await ok(`(echo through-the-fifo > ${U}/fifo &) ; cat ${U}/fifo`, true)
      t.equal(through, 'through-the-fifo', 'a FIFO on the mount carries data between two processes')
      const echoed = await ok(`node -e "${UNIX_SOCKET.replace(/"/g, '\\"').replace(/\n/g, ' ')}" ${U}/sock`, true)
      t.equal(echoed, 'echo:ping', 'bind() of a Unix socket on the mount, and a client through it')
      t.equal(await ok(`stat -c %F ${U}/sock`, true), 'socket')
      await ok(`mknod ${M}/null c 1 3 && mknod ${M}/loop b 7 0`)
      t.equal(await ok(`stat -c '%F %t %T' ${M}/null`), 'character special file 1 3')
      t.equal(await ok(`stat -c '%F %t %T' ${M}/loop`), 'block special file 7 0')
      await fails(`echo x > ${M}/null`, /Permission denied/) // the mount is nodev
      await fails(`mknod ${U}/dev c 1 3`, /Operation not permitted/, true) // CAP_MKNOD
      await ok(`rm ${U}/fifo ${U}/sock`, true)
      await ok(`mkfifo ${U}/fifo2`, true)
    })

    t.test('hard links: one inode number, fresh attributes under every name', async (t) => {
      await ok(`echo data > ${U}/h1 && stat ${U}/h1 >/dev/null && ln ${U}/h1 ${U}/h2`, true)
      const [i1, i2] = (await ok(`stat -c %i ${U}/h1 ${U}/h2`, true)).split('\n')
      t.equal(i1, i2, 'both names report the same st_ino')
      t.equal(await ok(`stat -c %h ${U}/h1`, true), '2', 'the other name shows the new nlink at once')
      const listed = await ok(`ls -i ${U} | grep ' h[12]$'`, true)
      t.same(listed.split('\n').map((l) => l.trim().split(' ')[0]), [i1, i1], 'readdir reports the same d_ino (ls -i)')
      t.equal(await ok(`find ${U} -inum ${i1} | sort`, true), `${U}/h1\n${U}/h2`, 'find -inum finds both names')
      const ctime = await ok(`stat -c %Z.%z ${U}/h1`, true)
      await ok(`sleep 1.1 && chmod 600 ${U}/h2`, true)
      t.equal(await ok(`stat -c %a ${U}/h1`, true), '600', 'chmod through one name shows through the other at once')
      t.not(await ok(`stat -c %Z.%z ${U}/h1`, true), ctime, 'and so does the new ctime')
      await ok(`rm ${U}/h2`, true)
      t.equal(await ok(`stat -c %h ${U}/h1`, true), '1', 'unlink of one name shows at once in the other')
      const dirs = (await ok(`stat -c %i ${M} ${U}`)).split('\n')
      t.not(dirs[0], dirs[1], 'directories have their own numbers')
    })

    t.test('one-sided times: touch -m, touch -a, UTIME_OMIT', async (t) => {
      await ok(`touch -d @1300000000 ${U}/times && touch -m -d @1500000000 ${U}/times`, true)
      t.equal(await ok(`stat -c '%X %Y' ${U}/times`, true), '1300000000 1500000000', 'touch -m changes only mtime')
      await ok(`touch -a -d @1400000000 ${U}/times`, true)
      t.equal(await ok(`stat -c '%X %Y' ${U}/times`, true), '1400000000 1500000000', 'touch -a changes only atime')
      await ok(`python3 -c "import os; os.utime('${U}/times', ns=(1200000000123000000, 1500000000000000000))"`, true)
      t.equal(await ok(`stat -c '%.3X %Y' ${U}/times`, true), '1200000000.123 1500000000', 'both, to the millisecond')
    })

    t.test('user.* extended attributes', async (t) => {
      await ok(`echo x > ${U}/xa && setfattr -n user.color -v blue ${U}/xa && setfattr -n user.empty ${U}/xa`, true)
      t.equal(await ok(`getfattr --only-values -n user.color ${U}/xa`, true), 'blue')
      t.match(await ok(`getfattr -d ${U}/xa`, true), /user\.color="blue"\nuser\.empty=""?/, 'getfattr -d lists them')
      await fails(`getfattr -n user.nope ${U}/xa`, /No such attribute/, true)
      t.equal(await ok(`python3 -c "${GETXATTR_SMALL.trim().replace(/"/g, '\\"').replace(/\n/g, '; ')}" ${U}/xa user.color`, true), '-34', 'ERANGE for a buffer too small')
      await fails(`setfattr -n user.color -v red ${U}/xa && python3 -c "import os; os.setxattr('${U}/xa', 'user.color', b'x', os.XATTR_CREATE)"`, /File exists/, true)
      await fails(`python3 -c "import os; os.setxattr('${U}/xa', 'user.new', b'x', os.XATTR_REPLACE)"`, /No data available/, true)
      await ok(`head -c 65536 /dev/zero | tr '\\000' v > /tmp/edfs-xattr-64k.$$ && setfattr -n user.big -v "$(cat /tmp/edfs-xattr-64k.$$)" ${U}/xa; r=$?; rm -f /tmp/edfs-xattr-64k.$$; exit $r`, true)
      t.equal(await ok(`getfattr --only-values -n user.big ${U}/xa | wc -c`, true), '65536', 'a value of XATTR_SIZE_MAX bytes')
      await fails(`python3 -c "import os; os.setxattr('${U}/xa', 'user.toobig', b'v' * 65537)"`, /Argument list too long/, true)
      await fails(`setfattr -n user.${'n'.repeat(251)} -v 1 ${U}/xa`, /Numerical result out of range/, true)
      await fails(`setfattr -n security.test -v 1 ${U}/xa`, /Operation not supported/)
      await fails(`setfattr -n trusted.test -v 1 ${U}/xa`, /Operation not supported/)
      // Reads of other namespaces are EOPNOTSUPP too (not ENODATA): ls -l stops asking per file.
      await fails(`getfattr -n security.selinux ${U}/xa`, /Operation not supported/, true)
      t.equal(await ok(`python3 -c "${GETXATTR_SMALL.trim().replace(/"/g, '\\"').replace(/\n/g, '; ')}" ${U}/xa system.posix_acl_access`, true), '-95', 'a POSIX ACL read is EOPNOTSUPP')
      await fails(`setfattr -n user.mine -v 1 ${M}/null`, /Operation not permitted/) // user.* only on files and directories
      await ok(`echo root > ${M}/rootfile && chmod 644 ${M}/rootfile`)
      await fails(`setfattr -n user.x -v 1 ${M}/rootfile`, /Permission denied/, true)
      await ok(`setfattr -x user.empty ${U}/xa`, true)
      t.notMatch(await ok(`getfattr -d ${U}/xa`, true), /user\.empty/, 'removed')
      await ok(`setfattr -n user.dir -v d ${U}`, true)
      await ok(`cp -a ${U}/xa ${U}/xa-copy`, true)
      t.equal(await ok(`getfattr --only-values -n user.color ${U}/xa-copy`, true), 'red', 'cp -a copies them')
    })

    t.test('fallocate', async (t) => {
      await ok(`fallocate -l 1048576 ${U}/fa`, true)
      t.equal(await ok(`stat -c %s ${U}/fa`, true), '1048576', 'mode 0 extends the size')
      await ok(`fallocate -n -o 0 -l 8388608 ${U}/fa`, true)
      t.equal(await ok(`stat -c %s ${U}/fa`, true), '1048576', 'FALLOC_FL_KEEP_SIZE leaves it')
      await fails(`fallocate -p -o 0 -l 4096 ${U}/fa`, /not supported|unsupported/, true) // EOPNOTSUPP
      await fails(`fallocate -z -o 0 -l 4096 ${U}/fa`, /not supported|unsupported/, true)
      await fails(`fallocate -o ${MAX} -l 1 ${U}/fa`, /File too large/, true)
      await ok(`python3 -c "import os; fd = os.open('${U}/pfa', os.O_CREAT | os.O_WRONLY); os.posix_fallocate(fd, 0, 2 << 20); os.write(fd, b'head')"`, true)
      t.equal(await ok(`stat -c %s ${U}/pfa && head -c 4 ${U}/pfa`, true), `${2 << 20}\nhead`, 'posix_fallocate')
    })

    t.test('after a remount', async (t) => {
      const before = await ok(`stat -c '%n %i %F %h %a %u %X %Y %s' ${U}/h1 ${U}/times ${U}/fifo2 ${U}/huge ${U}/last ${M}/null ${M}/loop ${U} ${M}`)
      const x = await ok(`getfattr -d ${U}/xa ${U}`, true)
      const r = await m.umount()
      t.equal(r.code, 0, `umount: ${r.stderr}`)
      m = await m.remount()
      t.equal(await ok(`stat -c '%n %i %F %h %a %u %X %Y %s' ${U}/h1 ${U}/times ${U}/fifo2 ${U}/huge ${U}/last ${M}/null ${M}/loop ${U} ${M}`), before, 'inode numbers, types, modes, times and sizes are kept')
      t.equal(await ok(`stat -c '%t %T' ${M}/null`), '1 3', 'the device number is kept')
      t.equal(await ok(`getfattr -d ${U}/xa ${U}`, true), x, 'extended attributes are kept')
      t.equal(await ok(`tail -c 4 ${U}/last`), 'tail')

      // The CLI beside the mount: special files are listed with their type and skipped by get.
      await ok(`mkdir ${M}/sp && echo content > ${M}/sp/file && mkfifo ${M}/sp/fifo`)
      t.equal((await runEdfs(['sync', M], { env: vol.env })).code, 0, 'edfs sync: the CLI reads what is committed')
      const ls = await runEdfs(['ls', '-l', '/sp', '--config', vol.cfg], { env: vol.env })
      t.match(ls.stdout, /^p[rw-]{9} .* fifo$/m, `edfs ls -l shows a FIFO as p: ${ls.stderr}`)
      const local = `${vol.dir}/got`
      const got = await runEdfs(['get', '/sp', local, '--config', vol.cfg], { env: vol.env })
      t.equal(got.code, 0, `edfs get of a tree with a FIFO: ${got.stderr}`)
      t.match(got.stderr, /skipping \/sp\/fifo: a FIFO/, 'says what it skipped')
      t.equal(await ok(`cat ${local}/file && ls ${local}`), 'content\nfile', 'copies the rest')
      const one = await runEdfs(['get', '/null', `${vol.dir}/null`, '--config', vol.cfg], { env: vol.env })
      t.not(one.code, 0)
      t.match(one.stderr, /\/null is a character device: get copies files, directories and symbolic links/)
      t.notMatch(await daemonLog(vol, M, 400), /unexpected error/, 'the daemon logged no unexpected error')
    })
  })

  t.test('no mount is left behind', async (t) => {
    t.same(await leftoverMounts(), [], 'none of this file\'s mount points is in /proc/mounts')
  })
})
