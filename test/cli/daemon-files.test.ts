// The mount daemon's files without a daemon: where they go, the stop status umount reads (only the
// one this daemon wrote, never a torn, foreign or stale one), and which pids count as alive.
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import { alive, clearStopStatus, daemonFiles, readStopStatus, writeStopStatus } from '../../src/cli/daemon-files'
import { tmpDir } from '../helpers/servers'

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
