// The mount daemon's files without a daemon: where they go, the stop status umount reads (only the
// one this daemon wrote, never a torn, foreign or stale one), which pids count as alive, and what
// umount reports from that status.
import { spawn } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { alive, clearStopStatus, daemonFiles, readStopStatus, writeStopStatus } from '../../src/cli/daemon-files'
import { live } from '../helpers/run'
import { runEdfs, tmpDir } from '../helpers/servers'

t.test('daemonFiles: one readable, distinct name per mount point, in the given directory', async (t) => {
  const a = daemonFiles('/mnt/dfs', '/state')
  t.match(a.log, /^\/state\/mount-mnt-dfs-[0-9a-f]{6}\.log$/)
  t.equal(a.pid, a.log.replace(/\.log$/, '.pid'))
  t.equal(a.status, a.log.replace(/\.log$/, '.status'))
  t.not(daemonFiles('/mnt/dfs2', '/state').log, a.log)
  t.not(daemonFiles('/mnt-dfs', '/state').log, a.log, 'the same readable part, told apart by the hash')
  t.match(daemonFiles('/', '/state').log, /mount-root-/)
})

t.test('the stop status: what this daemon wrote, else null', async (t) => {
  const file = path.join(tmpDir(t), 'mount.status')
  t.equal(await readStopStatus(file, 42), null, 'none written: killed or crashed')
  await writeStopStatus(file, { pid: 42, ok: false, errors: ['commit: no server answers'] })
  t.same(await readStopStatus(file, 42), { pid: 42, ok: false, errors: ['commit: no server answers'] })
  t.equal(await readStopStatus(file, 43), null, 'another daemon\'s status does not speak for this one')
  for (const bad of ['', '{"pid": 42, "ok": tr', '{"pid": 42, "ok": "yes", "errors": []}', '{"pid": 42.5, "ok": true, "errors": []}', '[]', 'null']) {
    await writeFile(file, bad)
    t.equal(await readStopStatus(file, 42), null, `a bad file reads as none: ${JSON.stringify(bad)}`)
  }
  await writeStopStatus(file, { pid: 42, ok: true, errors: [] })
  await clearStopStatus(file)
  t.equal(await readStopStatus(file, 42), null, 'cleared before the next daemon starts')
  await clearStopStatus(file) // clearing what is not there is fine
})

t.test('alive: this process is, pid 0 and negative pids (process groups to kill(2)) never are', async (t) => {
  t.ok(alive(process.pid))
  for (const pid of [0, -1, -process.pid, 1.5, Number.NaN]) t.notOk(alive(pid), `pid ${pid}`)
})

// What `edfs umount` says after the daemon exits, with a stand-in daemon: a process whose command
// line reads like one (`... mount MOUNTPOINT --foreground`), which on SIGTERM writes the given
// stop status, or none, and exits. Nothing is mounted, so only the reporting is under test.
t.test('umount reports the daemon\'s stop status, and its absence', async (t) => {
  const state = tmpDir(t)
  const mountPoint = path.join(tmpDir(t), 'mnt')
  await mkdir(path.join(state, 'edfs'))
  const { status } = daemonFiles(mountPoint, path.join(state, 'edfs'))
  const script = `
import json, os, signal, sys, time
def stop(*_):
    if sys.argv[1] != 'none':
        with open(sys.argv[2], 'w') as f: json.dump({'pid': os.getpid(), **json.loads(sys.argv[1])}, f)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print('ready', flush=True)
time.sleep(60)
`
  const umountWith = async (stopStatus: string) => {
    const daemon = spawn('python3', ['-c', script, stopStatus, status, 'mount', mountPoint, '--foreground'], { stdio: ['ignore', 'pipe', 'inherit'] })
    live.add(daemon)
    await new Promise((resolve) => daemon.stdout.once('data', resolve))
    const r = await runEdfs(['umount', mountPoint], { env: { XDG_STATE_HOME: state } })
    live.delete(daemon)
    return r
  }
  const none = await umountWith('none')
  t.equal(none.code, 1)
  t.match(none.stderr, /^edfs: unmounted .*mnt, but the daemon \(pid \d+\) ended without reporting: changes since the last commit may be lost/m)
  const failed = await umountWith(JSON.stringify({ ok: false, errors: ['commit: no server answers'] }))
  t.equal(failed.code, 1)
  t.match(failed.stderr, /but the last changes could not all be stored:\ncommit: no server answers\n/)
  const clean = await umountWith(JSON.stringify({ ok: true, errors: [] }))
  t.equal(clean.code, 0, clean.stderr)
  t.match(clean.stdout, /^edfs: unmounted .*mnt$/m)
})
