// Write-back commits over an in-memory store: close returns before its commit, commits follow within
// commitDelayMs, sync/fsync are durability points, and a crash at any moment (a snapshot of what
// the servers hold, loaded on its own) shows a prefix of the changes: the state after some operation,
// whole — never a later change without an earlier one, never a torn file.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { O_WRONLY } from '../../src/volume/fs-types'
import { Volume } from '../../src/volume/volume'
import { readAll, writeWhole } from './fixtures/file-io'
import { MemoryStore } from './fixtures/memory-store'
import { TEST_CHUNK as C, newVolume as newTestVolume } from './fixtures/new-volume'

const newVolume = () => newTestVolume({ volumeId: 'wb' })

/** What the servers hold right now, as another store: the state a crash would leave. */
function snapshot(store: MemoryStore): MemoryStore {
  const copy = new MemoryStore()
  for (const [id, b] of store.blobs) copy.blobs.set(id, { data: b.data, mtimeMs: b.mtimeMs })
  for (const [server, recs] of store.records) copy.records.set(server, new Map([...recs].map(([n, r]) => [n, { ...r }])))
  return copy
}

/** The tree as path -> content (hex digest of files, 'dir' for directories). */
async function treeOf(v: Volume, dir = '/', out = new Map<string, string>()): Promise<Map<string, string>> {
  for (const e of await v.readdir(dir)) {
    const p = dir === '/' ? `/${e.name}` : `${dir}/${e.name}`
    if ((e.mode & 0o170000) === 0o040000) {
      out.set(p, 'dir')
      await treeOf(v, p, out)
    } else out.set(p, (await readAll(v, p)).toString('base64'))
  }
  return out
}

const show = (m: Map<string, string>) => JSON.stringify([...m].sort().map(([p, c]) => [p, c.length > 12 ? `${c.slice(0, 12)}…${c.length}` : c]))

t.test('close returns before the commit; the commit follows within commitDelayMs; sync is durable', async (t) => {
  const { store, keys } = await newVolume()
  const v = await Volume.open(store, keys, { readOnly: false, commitDelayMs: 60_000 })
  await writeWhole(v, '/a', Buffer.from('written back'))
  await writeWhole(v, '/big', randomBytes(3 * C + 7))
  let ro = await Volume.open(snapshot(store), keys, { readOnly: true })
  t.same([...(await ro.readdir('/'))], [], 'after close, nothing is committed yet')
  await ro.close()
  t.same((await readAll(v, '/big')).length, 3 * C + 7, 'the writer reads its own data meanwhile')
  await v.sync()
  ro = await Volume.open(snapshot(store), keys, { readOnly: true })
  t.equal((await readAll(ro, '/a')).toString(), 'written back', 'after sync, committed')
  t.equal((await ro.getattr('/big')).size, 3 * C + 7)
  await ro.close()
  await v.close()

  const w = await Volume.open(store, keys, { readOnly: false, commitDelayMs: 20 })
  await writeWhole(w, '/soon', Buffer.from('within the interval'))
  await new Promise((r) => setTimeout(r, 300))
  ro = await Volume.open(snapshot(store), keys, { readOnly: true })
  t.equal((await readAll(ro, '/soon')).toString(), 'within the interval', 'committed in the background without any sync')
  await ro.close()
  await w.close()
})

t.test('an unlinked file that was never committed leaves nothing behind', async (t) => {
  const { store, keys } = await newVolume()
  const v = await Volume.open(store, keys, { readOnly: false, commitDelayMs: 60_000 })
  await writeWhole(v, '/tmp', randomBytes(2 * C))
  await v.unlink('/tmp')
  await v.sync()
  t.equal(v.namespace.inodeCount, 1, 'only the root')
  await v.close()
})

t.test('a crash at any moment shows a prefix of the changes', async (t) => {
  const { store, keys } = await newVolume()
  // Uploads take their time, as on a network, so commits interleave with them.
  const put = store.put.bind(store)
  store.put = async (id, data) => {
    await new Promise((r) => setTimeout(r, (id.charCodeAt(0) + id.charCodeAt(1)) % 6))
    return put(id, data)
  }
  const v = await Volume.open(store, keys, { readOnly: false, commitDelayMs: 3 })
  const expected = new Map<string, string>()
  const states: string[] = [show(expected)] // states[k]: the tree after the first k operations
  const snaps: MemoryStore[] = []
  let seed = 7
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2147483648) % n)
  const files = ['/f0', '/f1', '/f2', '/d/g0', '/d/g1']
  await v.mkdir('/d', 0o755, 0, 0)
  expected.set('/d', 'dir')
  states.push(show(expected))
  for (let op = 0; op < 80; op++) {
    const f = files[rnd(files.length)]!
    const kind = rnd(10)
    if (kind < 6) {
      const data = randomBytes(rnd(3) === 0 ? rnd(3 * C) : rnd(3000))
      await writeWhole(v, f, data)
      expected.set(f, data.toString('base64'))
    } else if (kind < 8 && expected.has(f)) {
      const to = files[rnd(files.length)]!
      await v.rename(f, to)
      if (to !== f) {
        expected.set(to, expected.get(f)!)
        expected.delete(f)
      }
    } else if (expected.has(f)) {
      await v.unlink(f)
      expected.delete(f)
    }
    states.push(show(expected))
    snaps.push(snapshot(store))
    if (rnd(4) === 0) await new Promise((r) => setTimeout(r, rnd(8))) // let background commits land
  }
  await v.close()
  snaps.push(snapshot(store))
  let last = 0
  for (const [i, snap] of snaps.entries()) {
    const ro = await Volume.open(snap, keys, { readOnly: true })
    const seen = show(await treeOf(ro))
    await ro.close()
    const k = states.indexOf(seen, last)
    if (k < 0) {
      t.fail(`crash point ${i}: the volume matches no prefix at or after operation ${last}: ${seen}`)
      return
    }
    last = k
  }
  t.equal(last, states.length - 1, 'after close, the whole history is there')
  t.pass(`${snaps.length} crash points, each a prefix, in order`)
})

t.test('fsync commits the file and everything before it; data written during a commit waits for the next', async (t) => {
  const { store, keys } = await newVolume()
  const v = await Volume.open(store, keys, { readOnly: false, commitDelayMs: 60_000 })
  await writeWhole(v, '/before', Buffer.from('closed earlier'))
  const fh = await v.create('/log', 0o644, 0, 0, O_WRONLY)
  await v.write(fh, Buffer.from('line 1\n'), 7, 0)
  await v.fsync(fh)
  const ro = await Volume.open(snapshot(store), keys, { readOnly: true })
  t.equal((await readAll(ro, '/log')).toString(), 'line 1\n')
  t.equal((await readAll(ro, '/before')).toString(), 'closed earlier', 'a file closed before the fsync is committed with it')
  await ro.close()
  // A writer that never stops cannot hold up a commit: each one takes what was buffered when it began.
  let writing = true
  let pos = 7
  const writer = (async () => {
    while (writing) {
      await v.write(fh, Buffer.alloc(4096, 1), 4096, pos)
      pos += 4096
      await new Promise((r) => setImmediate(r))
    }
  })()
  await v.sync()
  await v.sync()
  writing = false
  await writer
  await v.release(fh)
  await v.close()
  t.pass('sync returned while another write stream went on')
})

t.test('ctime is the time of the change, not of its commit; a future mtime does not move it', async (t) => {
  const { store, keys } = await newVolume()
  const v = await Volume.open(store, keys, { readOnly: false, commitDelayMs: 60_000 })
  const before = Date.now()
  await writeWhole(v, '/f', Buffer.from('data'))
  const written = Date.now()
  await new Promise((r) => setTimeout(r, 50))
  await v.sync()
  const a = await v.getattr('/f')
  t.ok(a.ctimeMs >= before && a.ctimeMs <= written, `ctime ${a.ctimeMs - before} ms after the write began, not at the commit`)
  const future = Date.now() + 86_400_000
  await v.utimens('/f', future, future)
  t.ok((await v.getattr('/f')).ctimeMs < future, 'utimens to the future moves mtime, not ctime')
  await v.close()
  const ro = await Volume.open(snapshot(store), keys, { readOnly: true })
  t.equal((await ro.getattr('/f')).mtimeMs, future, 'the mtime set by utimens is committed')
  await ro.close()
})

t.test('a truncate during a commit of the old contents: the cut chunks never come back', async (t) => {
  const { store, keys } = await newVolume()
  const v = await Volume.open(store, keys, { readOnly: false, commitDelayMs: 60_000 })
  const data = randomBytes(4 * C)
  await writeWhole(v, '/f', data)
  // Hold the commit of the old contents at its head write, so that it lands after the truncate.
  const cas = store.casRecord.bind(store)
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  let held!: () => void
  const reached = new Promise<void>((r) => (held = r))
  store.casRecord = async (...args: Parameters<MemoryStore['casRecord']>) => {
    held()
    await gate
    return cas(...args)
  }
  const committing = v.commit()
  await reached
  await v.truncate('/f', 1000)
  release()
  await committing
  store.casRecord = cas
  await v.truncate('/f', 3 * C - 100)
  const expected = Buffer.concat([data.subarray(0, 1000), Buffer.alloc(3 * C - 100 - 1000)])
  t.ok((await readAll(v, '/f')).equals(expected), 'read back: the first 1000 bytes, then zeros')
  await v.sync()
  await v.close()
  const again = await Volume.open(store, keys, { readOnly: true })
  t.teardown(() => again.close())
  t.ok((await readAll(again, '/f')).equals(expected), 'and so it was committed')
})
