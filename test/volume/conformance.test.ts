// The FileSystem conformance suite (test/helpers/fs-conformance.ts) against the volume over the
// in-memory store, without a mount; test/e2e/conformance.test.ts runs it through one.
import t from 'tap'
import { fsConformance, type FsUnderTest } from '../helpers/fs-conformance'
import { readAll, writeWhole } from './fixtures/file-io'
import { newVolume } from './fixtures/new-volume'

t.test('the volume over the in-memory store', async (t) => {
  const { open } = await newVolume({ volumeId: 'conformance' })
  const v = await open()
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
