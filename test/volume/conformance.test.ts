// The FileSystem conformance suite (test/helpers/fs-conformance.ts) against the volume over the
// in-memory store, without a mount; test/e2e/conformance.test.ts runs it through one.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { deriveVolumeKeys } from '../../src/crypto'
import { Volume } from '../../src/volume/volume'
import { fsConformance, type FsUnderTest } from '../helpers/fs-conformance'
import { readAll, writeWhole } from './fixtures/file-io'
import { MemoryStore } from './fixtures/memory-store'

t.test('the volume over the in-memory store', async (t) => {
  const store = new MemoryStore()
  const keys = deriveVolumeKeys(randomBytes(32))
  await Volume.create(store, keys, { volumeId: 'conformance', chunkSize: 64 * 1024, replicas: 2, uid: 0, gid: 0 })
  const v = await Volume.open(store, keys, { readOnly: false, commitDelayMs: 5 })
  t.teardown(() => v.close())
  const fs: FsUnderTest = {
    mkdir: (p, mode) => v.mkdir(p, mode, 0, 0),
    writeFile: (p, data) => writeWhole(v, p, data),
    readFile: (p) => readAll(v, p),
    async stat(p) {
      const a = await v.getattr(p)
      return { ino: a.ino, mode: a.mode, nlink: a.nlink, size: a.size, mtimeMs: a.mtimeMs }
    },
    readdir: async (p) => [...(await v.readdir(p))].map((e) => e.name),
    rename: (a, b) => v.rename(a, b),
    unlink: (p) => v.unlink(p),
    rmdir: (p) => v.rmdir(p),
    truncate: (p, n) => v.truncate(p, n),
    link: (a, b) => v.link(a, b),
    symlink: (target, p) => v.symlink(target, p, 0, 0),
    readlink: (p) => v.readlink(p),
    chmod: (p, mode) => v.chmod(p, mode),
    utimes: (p, a, m) => v.utimens(p, a, m),
  }
  fsConformance(t, fs)
})
