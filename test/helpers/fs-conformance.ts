// One FileSystem conformance suite, run against the volume over the in-memory store
// (test/volume/conformance.test.ts) and against a real mount (test/e2e/conformance.test.ts): the
// same expectations, so a rule the volume keeps without a mount is shown to hold through FUSE too,
// and a new case is written once. Paths are relative to the file system's root; failures carry an
// errno name in `code`, as FsError and Node's fs errors both do.
import type { Test } from 'tap'

export interface Stat {
  ino: number
  mode: number
  nlink: number
  size: number
  mtimeMs: number
}

/** The operations the suite uses, as a file system under test offers them. */
export interface FsUnderTest {
  mkdir(path: string, mode: number): Promise<void>
  writeFile(path: string, data: Buffer): Promise<void>
  readFile(path: string): Promise<Buffer>
  stat(path: string): Promise<Stat>
  /** Names in the directory, without '.' and '..'. */
  readdir(path: string): Promise<string[]>
  rename(from: string, to: string): Promise<void>
  unlink(path: string): Promise<void>
  rmdir(path: string): Promise<void>
  truncate(path: string, size: number): Promise<void>
  link(existing: string, path: string): Promise<void>
  symlink(target: string, path: string): Promise<void>
  readlink(path: string): Promise<string>
  chmod(path: string, mode: number): Promise<void>
  utimes(path: string, atimeMs: number, mtimeMs: number): Promise<void>
}

const S_IFMT = 0o170000
const S_IFDIR = 0o040000
const S_IFREG = 0o100000

function pattern(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size)
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed) & 0xff
  return b
}

/** Registers the suite's cases under `t`, each in a directory of its own below `root`. */
export function fsConformance(t: Test, fs: FsUnderTest, root = ''): void {
  let n = 0
  const dir = async () => {
    const d = `${root}/conf${n++}`
    await fs.mkdir(d, 0o755)
    return d
  }

  t.test('contents round-trip at every size, and overwrite replaces them', async (t) => {
    const d = await dir()
    for (const size of [0, 1, 4095, 65537, 1_500_000]) {
      const data = pattern(size, size)
      await fs.writeFile(`${d}/f${size}`, data)
      t.ok((await fs.readFile(`${d}/f${size}`)).equals(data), `${size} bytes`)
      t.equal((await fs.stat(`${d}/f${size}`)).size, size)
    }
    await fs.writeFile(`${d}/f65537`, Buffer.from('short'))
    t.equal((await fs.readFile(`${d}/f65537`)).toString(), 'short', 'a shorter rewrite leaves no tail')
  })

  t.test('directories: listing, EEXIST, ENOTEMPTY, ENOENT, ENOTDIR', async (t) => {
    const d = await dir()
    await fs.mkdir(`${d}/sub`, 0o750)
    await fs.writeFile(`${d}/sub/a`, Buffer.from('a'))
    await fs.writeFile(`${d}/b`, Buffer.from('b'))
    t.same((await fs.readdir(d)).sort(), ['b', 'sub'])
    t.equal((await fs.stat(`${d}/sub`)).mode & (S_IFMT | 0o777), S_IFDIR | 0o750, 'type and mode')
    await t.rejects(fs.mkdir(`${d}/sub`, 0o755), { code: 'EEXIST' })
    await t.rejects(fs.rmdir(`${d}/sub`), { code: 'ENOTEMPTY' })
    await t.rejects(fs.stat(`${d}/nope`), { code: 'ENOENT' })
    await t.rejects(fs.writeFile(`${d}/b/x`, Buffer.from('x')), { code: 'ENOTDIR' })
    await fs.unlink(`${d}/sub/a`)
    await fs.rmdir(`${d}/sub`)
    t.same(await fs.readdir(d), ['b'], 'emptied and removed')
  })

  t.test('rename: over a file, over directories, into itself', async (t) => {
    const d = await dir()
    await fs.writeFile(`${d}/a`, Buffer.from('from a'))
    await fs.writeFile(`${d}/b`, Buffer.from('from b'))
    await fs.rename(`${d}/a`, `${d}/b`)
    t.equal((await fs.readFile(`${d}/b`)).toString(), 'from a', 'the target is replaced')
    await t.rejects(fs.stat(`${d}/a`), { code: 'ENOENT' }, 'the source name is gone')
    await fs.mkdir(`${d}/empty`, 0o755)
    await fs.mkdir(`${d}/full`, 0o755)
    await fs.writeFile(`${d}/full/x`, Buffer.from('x'))
    await fs.mkdir(`${d}/moving`, 0o755)
    await t.rejects(fs.rename(`${d}/moving`, `${d}/full`), { code: 'ENOTEMPTY' })
    await t.rejects(fs.rename(`${d}/b`, `${d}/empty`), { code: 'EISDIR' })
    await t.rejects(fs.rename(`${d}/moving`, `${d}/b`), { code: 'ENOTDIR' })
    await t.rejects(fs.rename(`${d}/moving`, `${d}/moving/inside`), { code: 'EINVAL' })
    await fs.rename(`${d}/moving`, `${d}/empty`)
    t.same((await fs.readdir(d)).sort(), ['b', 'empty', 'full'], 'a directory replaces an empty one')
  })

  t.test('hard links share data and inode; symlinks keep their target', async (t) => {
    const d = await dir()
    await fs.writeFile(`${d}/f`, Buffer.from('shared'))
    await fs.link(`${d}/f`, `${d}/g`)
    const [f, g] = [await fs.stat(`${d}/f`), await fs.stat(`${d}/g`)]
    t.equal(f.ino, g.ino, 'one inode')
    t.equal(g.nlink, 2)
    await fs.writeFile(`${d}/g`, Buffer.from('changed through g'))
    t.equal((await fs.readFile(`${d}/f`)).toString(), 'changed through g', 'one contents')
    await fs.unlink(`${d}/f`)
    t.equal((await fs.stat(`${d}/g`)).nlink, 1, 'the other name stays')
    await fs.symlink('g', `${d}/l`)
    t.equal(await fs.readlink(`${d}/l`), 'g')
    await fs.symlink('nowhere', `${d}/dangling`)
    t.equal(await fs.readlink(`${d}/dangling`), 'nowhere', 'a dangling symlink is kept as written')
  })

  t.test('truncate down and up: zeros past the old end', async (t) => {
    const d = await dir()
    const data = pattern(200_000, 7)
    await fs.writeFile(`${d}/f`, data)
    await fs.truncate(`${d}/f`, 1000)
    t.ok((await fs.readFile(`${d}/f`)).equals(data.subarray(0, 1000)), 'down')
    await fs.truncate(`${d}/f`, 150_000)
    const grown = await fs.readFile(`${d}/f`)
    t.equal(grown.length, 150_000)
    t.ok(grown.subarray(0, 1000).equals(data.subarray(0, 1000)) && grown.subarray(1000).every((b) => b === 0), 'up: the old bytes, then zeros')
  })

  t.test('chmod keeps the type; utimes sets mtime', async (t) => {
    const d = await dir()
    await fs.writeFile(`${d}/f`, Buffer.from('x'))
    await fs.chmod(`${d}/f`, 0o600)
    t.equal((await fs.stat(`${d}/f`)).mode & (S_IFMT | 0o7777), S_IFREG | 0o600)
    await fs.utimes(`${d}/f`, 1_600_000_000_000, 1_700_000_000_000)
    t.equal(Math.round((await fs.stat(`${d}/f`)).mtimeMs), 1_700_000_000_000)
  })
}
