// The writer's lease over an in-memory store: one writer at a time, a dead holder's lease taken over
// at once, renewal before a commit once it ran out, and knowing when another writer took it.
import t from 'tap'
import { Lease } from '../../src/volume/lease'
import { readAll, writeWhole } from './fixtures/file-io'
import { newVolume as newTestVolume } from './fixtures/new-volume'

const newVolume = () => newTestVolume({ volumeId: 'lease', openWith: { syncClose: true } })

t.test('one writer at a time; a reader follows the writer', async (t) => {
  const { open } = await newVolume()
  const w = await open()
  await t.rejects(open(), /open for writing by .* since/, 'a second writer is refused, naming the holder')
  const r = await open(true, { followIntervalMs: 20 })
  await writeWhole(w, '/new', Buffer.from('hello'))
  await new Promise((res) => setTimeout(res, 200))
  t.equal((await readAll(r, '/new')).toString(), 'hello', 'the reader sees the commit')
  await w.close()
  const w2 = await open()
  t.pass('after close, another writer gets the lease')
  await w2.close()
  await r.close()
})

t.test('a lease left by a dead process of this host is taken over at once', async (t) => {
  const { open, store, keys } = await newVolume()
  const { spawn } = await import('node:child_process')
  const child = spawn(process.execPath, ['-e', ''])
  const deadPid = await new Promise<number>((res) => child.on('exit', () => res(child.pid!)))
  const record = Lease.record(store, keys)
  await record.readAll()
  const now = Date.now()
  const { hostname } = await import('node:os')
  await record.write({ holder: 'crashed daemon', host: hostname(), pid: deadPid, token: 'x', sinceMs: now, expiresMs: now + 60_000 }, () => true)
  const w = await open()
  t.pass('the writer took over the dead holder\'s lease')
  await w.close()
  await record.write({ holder: 'other host', host: 'elsewhere', pid: deadPid, token: 'y', sinceMs: now, expiresMs: Date.now() + 60_000 }, () => true)
  await t.rejects(open(), /open for writing by other host/, 'a live lease of another host is respected')

  // A daemon killed with -9 is a zombie until its parent reaps it: it holds nothing any more.
  // The parent forks a child that exits at once and never waits for it (a shell may reap its
  // background jobs before an exec, which made `sh -c 'sleep 0 & ...'` flaky under load).
  const forkAndKeep = 'import os, time\npid = os.fork()\nif pid == 0: os._exit(0)\nprint(pid, flush=True)\ntime.sleep(30)'
  const parent = spawn('python3', ['-c', forkAndKeep], { stdio: ['ignore', 'pipe', 'ignore'] })
  t.teardown(() => void parent.kill('SIGKILL'))
  const zombie = Number(await new Promise<string>((res) => parent.stdout!.once('data', (d: Buffer) => res(d.toString()))))
  const { readFile } = await import('node:fs/promises')
  for (let i = 0; i < 100 && !/\) Z /.test(await readFile(`/proc/${zombie}/stat`, 'utf8').catch(() => '')); i++) await new Promise((r) => setTimeout(r, 20))
  t.match(await readFile(`/proc/${zombie}/stat`, 'utf8'), /\) Z /, `pid ${zombie} is a zombie`)
  await record.write({ holder: 'killed daemon', host: hostname(), pid: zombie, token: 'z', sinceMs: now, expiresMs: Date.now() + 60_000 }, () => true)
  const z = await open()
  t.pass('the writer took over the zombie holder\'s lease at once')
  await z.close()
})

t.test('a writer whose lease ran out renews it before committing, or stops if another took it', async (t) => {
  const { store, keys } = await newVolume()
  const ttl = 300
  const cutOff = (l: Lease) => (l.renew = async () => undefined) // renewals never arrive
  const first = await Lease.acquire(store, keys, 'first', ttl)
  cutOff(first)
  await new Promise((res) => setTimeout(res, ttl + 50))
  delete (first as { renew?: unknown }).renew
  await first.ensureValid(50)
  t.equal(first.lost, null, 'nobody took it: renewed, still the holder')
  t.ok(first.holder.expiresMs > Date.now(), 'with a new expiry')
  cutOff(first)
  await new Promise((res) => setTimeout(res, ttl + 50))
  const second = await Lease.acquire(store, keys, 'second', 60_000)
  delete (first as { renew?: unknown }).renew
  await first.ensureValid(50)
  t.match(first.lost?.message ?? '', /./, 'taken over meanwhile: the first writer knows it lost the lease')
  await second.release()
  await first.release()
})
