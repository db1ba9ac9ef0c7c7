// The repair queue file: kept across loads, bounded, and a damaged or foreign file never stops a
// mount: it is replaced, and a full pass is marked due so nothing it held is forgotten.
import t from 'tap'
import { readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { MAX_QUEUED, RepairQueue } from '../../src/volume/repair-queue'
import { tmpDir } from '../helpers/servers'

const id = (n: number) => n.toString(16).padStart(64, '0')

t.test('entries survive a reload; a remove is saved too', async (t) => {
  const file = path.join(tmpDir(t), 'state', 'repair-v.json')
  const q = await RepairQueue.load(file)
  t.equal(q.size, 0)
  q.add(id(1), 2)
  q.add(id(2), 3)
  q.add(id(1), 2)
  await q.flush()
  const again = await RepairQueue.load(file)
  t.same(again.entries(), [[id(1), 2], [id(2), 3]], 'both ids, with the copies each wants')
  t.notOk(again.overflow)
  again.remove(id(1))
  again.passFinished(1234)
  await again.flush()
  const third = await RepairQueue.load(file)
  t.same(third.entries(), [[id(2), 3]])
  t.equal(third.lastPassFinishedAt, 1234)
})

t.test('a damaged, foreign or hostile file: a clear log line, a fresh queue, a full pass due', async (t) => {
  const dir = tmpDir(t)
  for (const [name, text] of [
    ['garbage', '{not json'],
    ['foreign', JSON.stringify({ format: 'something-else', version: 1, blobs: {} })],
    ['newer', JSON.stringify({ format: 'edfs-repair-queue', version: 99, blobs: {} })],
    ['hostile', JSON.stringify({ format: 'edfs-repair-queue', version: 1, blobs: { '../../etc': 2, [id(7)]: -1, [id(8)]: 2 }, overflow: false, lastPassFinishedAt: null })],
  ] as const) {
    const file = path.join(dir, `${name}.json`)
    await writeFile(file, text)
    const logs: string[] = []
    const q = await RepairQueue.load(file, (l) => logs.push(l))
    if (name === 'hostile') {
      t.same(q.entries(), [[id(8), 2]], 'hostile: only well-formed entries are kept')
    } else {
      t.equal(q.size, 0, `${name}: empty`)
      t.ok(q.overflow, `${name}: a full pass is due`)
      t.match(logs.join('\n'), /damaged/, `${name}: said so`)
    }
  }
})

t.test('bounded: past MAX_QUEUED ids it asks for a full pass instead of growing', async (t) => {
  const file = path.join(tmpDir(t), 'q.json')
  const q = await RepairQueue.load(file)
  for (let i = 0; i < MAX_QUEUED + 10; i++) q.add(id(i), 2)
  t.equal(q.size, MAX_QUEUED)
  t.ok(q.overflow)
  await q.flush()
  t.ok((await readFile(file, 'utf8')).length < 8 * 1024 * 1024, 'the file stays under 8 MB')
})
