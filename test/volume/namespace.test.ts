import t from 'tap'
import { FsError } from '../../src/volume/fs-types'
import { Namespace, chunksEntry } from '../../src/volume/namespace'

const ROOT = '0'.repeat(32)
const C = 65536

function fresh(): Namespace {
  const ns = Namespace.empty(ROOT, C, 0, 0)
  ns.takePending()
  return ns
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    if (err instanceof FsError) return err.code
    throw err
  }
  return undefined
}

/** Everything observable about a namespace, in a canonical form. */
function snapshot(ns: Namespace): unknown {
  return ns.serialize().sort((a, b) => (a.id < b.id ? -1 : 1)).map((n) => ({ ...n, entries: n.entries?.sort() }))
}

t.test('tree operations and their errors match ext4', async (t) => {
  const ns = fresh()
  ns.add('/d', ns.makeInode('dir', 0o755, 0, 0))
  ns.add('/d/f', ns.makeInode('file', 0o644, 0, 0))
  t.equal(ns.resolve('/d').nlink, 2, 'a directory without subdirectories has nlink 2')
  t.equal(ns.resolve('/').nlink, 3, 'root nlink counts the subdirectory')
  t.equal(codeOf(() => ns.add('/d/f', ns.makeInode('file', 0o644, 0, 0))), 'EEXIST')
  t.equal(codeOf(() => ns.resolve('/nope')), 'ENOENT')
  t.equal(codeOf(() => ns.resolve('/d/f/x')), 'ENOTDIR')
  t.equal(codeOf(() => ns.rmdir('/d')), 'ENOTEMPTY')
  t.equal(codeOf(() => ns.rmdir('/d/f')), 'ENOTDIR')
  t.equal(codeOf(() => ns.unlink('/d')), 'EISDIR')
  t.equal(codeOf(() => ns.add(`/${'x'.repeat(256)}`, ns.makeInode('file', 0o644, 0, 0))), 'ENAMETOOLONG')
  t.equal(codeOf(() => ns.add('/a\0b', ns.makeInode('file', 0o644, 0, 0))), 'EINVAL')
  t.equal(codeOf(() => ns.resolve('/d/../etc')), 'EINVAL', "'..' cannot escape")
  t.equal(codeOf(() => ns.link('/d', '/d2')), 'EPERM', 'no hard links to directories')
  t.equal(codeOf(() => ns.rename('/d', '/d/sub')), 'EINVAL', 'a directory cannot move into itself')
  ns.add(`/${'y'.repeat(255)}`, ns.makeInode('file', 0o644, 0, 0))
  t.pass('a 255-byte name is fine')
})

t.test('rename replaces files and empty directories, refuses the rest', async (t) => {
  const ns = fresh()
  for (const p of ['/a', '/b']) ns.add(p, ns.makeInode('file', 0o644, 0, 0))
  for (const p of ['/d1', '/d2', '/full']) ns.add(p, ns.makeInode('dir', 0o755, 0, 0))
  ns.add('/full/x', ns.makeInode('file', 0o644, 0, 0))
  const bId = ns.resolve('/b').id
  const replaced = ns.rename('/a', '/b')
  t.equal(replaced?.id, bId, 'the replaced file is returned')
  t.equal(replaced?.nlink, 0)
  t.equal(codeOf(() => ns.resolve('/a')), 'ENOENT')
  t.equal(codeOf(() => ns.rename('/b', '/d1')), 'EISDIR')
  t.equal(codeOf(() => ns.rename('/d1', '/b')), 'ENOTDIR')
  t.equal(codeOf(() => ns.rename('/d1', '/full')), 'ENOTEMPTY')
  ns.rename('/d1', '/d2')
  t.equal(codeOf(() => ns.resolve('/d1')), 'ENOENT')
  t.equal(ns.resolve('/').nlink, 4, 'root: 2 + d2 + full')
})

t.test('hard links share the inode and count links', async (t) => {
  const ns = fresh()
  ns.add('/f', ns.makeInode('file', 0o644, 0, 0))
  ns.link('/f', '/g')
  t.equal(ns.resolve('/g'), ns.resolve('/f'))
  t.equal(ns.resolve('/f').nlink, 2)
  const node = ns.unlink('/f')
  t.equal(node.nlink, 1)
  t.equal(ns.resolve('/g').nlink, 1)
})

t.test('replaying the journal rebuilds exactly the same namespace', async (t) => {
  const ns = Namespace.empty(ROOT, C, 0, 0)
  const base = Namespace.deserialize(ROOT, C, ns.serialize())
  const journal = ns.takePending()
  let seed = 7
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31
    return seed % n
  }
  const paths: string[] = ['/']
  for (let i = 0; i < 2000; i++) {
    const op = rnd(7)
    const dir = paths.filter((p) => { try { return ns.resolve(p).kind === 'dir' } catch { return false } })[rnd(10) % Math.max(1, paths.length)] ?? '/'
    const name = `${dir === '/' ? '' : dir}/n${i}`
    try {
      if (op === 0) { ns.add(name, ns.makeInode('dir', 0o755, 1, 1)); paths.push(name) }
      else if (op === 1) { ns.add(name, ns.makeInode('file', 0o600, 1, 1)); paths.push(name) }
      else if (op === 2) ns.rename(paths[rnd(paths.length)]!, name)
      else if (op === 3) ns.unlink(paths[rnd(paths.length)]!)
      else if (op === 4) {
        const inline = Buffer.alloc(rnd(100), i % 256)
        const ref = i % 2 ? { id: 'a'.repeat(64), len: rnd(C) } : { inline, len: inline.length }
        // As a commit records a file: after the entries pending when it began.
        const e = chunksEntry(ns.resolve(paths[rnd(paths.length)]!), rnd(5 * C), [[0, ref]])
        journal.push(...ns.takePending())
        ns.applyCommitted([e])
        journal.push(e)
      }
      else if (op === 5) ns.setAttrs(ns.resolve(paths[rnd(paths.length)]!), { mode: 0o100640, mtimeMs: i })
      else ns.link(paths[rnd(paths.length)]!, name)
    } catch (err) {
      if (!(err instanceof FsError) && !/unknown file/.test((err as Error).message)) throw err
    }
  }
  journal.push(...ns.takePending())
  for (const e of journal.slice(1)) base.apply(e)
  t.same(snapshot(base), snapshot(ns), 'replayed state equals live state')
  const again = Namespace.deserialize(ROOT, C, JSON.parse(JSON.stringify(ns.serialize())))
  t.same(snapshot(again), snapshot(ns), 'a checkpoint round trip keeps everything')
})

t.test('truncate of the chunk list follows the size', async (t) => {
  const ns = fresh()
  const f = ns.add('/f', ns.makeInode('file', 0o644, 0, 0))
  ns.applyCommitted([chunksEntry(f, 3 * C, [[0, { id: 'a'.repeat(64), len: C }], [2, { id: 'b'.repeat(64), len: C }]])])
  t.same([...f.chunks!].map(([i, c]) => [i, 'id' in c ? c.id[0] : null]), [[0, 'a'], [2, 'b']], 'a hole has no entry')
  ns.applyCommitted([chunksEntry(f, C + 1, [])])
  t.same([...f.chunks!.keys()], [0], 'chunks past the new size are gone')
  t.equal(f.size, C + 1)
})

t.test('a sparse file of any size costs only its data chunks', async (t) => {
  const ns = fresh()
  const f = ns.add('/f', ns.makeInode('file', 0o644, 0, 0))
  const huge = 2 ** 44
  ns.applyCommitted([chunksEntry(f, huge, [[huge / C - 1, { id: 'c'.repeat(64), len: C }]])])
  t.equal(f.chunks!.size, 1, 'one chunk entry for a 16 TiB file')
  const stored = JSON.stringify(ns.serialize())
  t.ok(stored.length < 4096, `the checkpoint stays small (${stored.length} bytes)`)
  const again = Namespace.deserialize(ROOT, C, JSON.parse(stored))
  t.equal(again.get(f.id)!.chunks!.get(huge / C - 1)?.len, C)
})

t.test('inode numbers: unique, kept by replay and checkpoints, given to format-1 inodes', async (t) => {
  const ns = fresh()
  const a = ns.add('/a', ns.makeInode('file', 0o644, 0, 0))
  const b = ns.add('/b', ns.makeInode('dir', 0o755, 0, 0))
  const nums = [ns.get(ROOT)!.inum, a.inum, b.inum]
  t.equal(new Set(nums).size, 3, `distinct: ${nums.join(', ')}`)
  ns.link('/a', '/b/a2')
  t.equal(ns.resolve('/b/a2').inum, a.inum, 'a hard link is the same inode number')
  const again = Namespace.deserialize(ROOT, C, JSON.parse(JSON.stringify(ns.serialize())))
  const c = again.add('/c', again.makeInode('file', 0o644, 0, 0))
  t.ok(c.inum! > Math.max(...(nums as number[])), 'a new inode after a reload takes a fresh number')
  // Format 1 stored none: numbering is deterministic, the root first.
  const old = JSON.parse(JSON.stringify(ns.serialize())).map((n: { inum?: number }) => ({ ...n, inum: undefined }))
  const n1 = Namespace.deserialize(ROOT, C, old)
  const n2 = Namespace.deserialize(ROOT, C, old)
  t.equal(n1.numberInodes(), 3)
  n2.numberInodes()
  t.same([...n1.all()].map((n) => [n.id, n.inum]), [...n2.all()].map((n) => [n.id, n.inum]), 'the same numbers on every load')
  t.equal(n1.get(ROOT)!.inum, 1, 'the root is numbered first')
})

t.test('an entry of an unknown type is refused, not skipped', async (t) => {
  const ns = fresh()
  t.throws(() => ns.apply({ t: 'hardlink-v9', ino: 'x' } as never), /journal: unknown entry type "hardlink-v9"/)
})
