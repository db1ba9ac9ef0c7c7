// The FileSystem conformance suite (test/helpers/fs-conformance.ts) through a real mount: the same
// cases test/volume/conformance.test.ts runs on the volume without one, here as system calls
// through FUSE to a mount daemon in its own process.
import t from 'tap'
import { chmod, link, mkdir, readFile, readdir, readlink, rename, rmdir, stat, symlink, truncate, unlink, utimes, writeFile } from 'node:fs/promises'
import { fsConformance, type FsUnderTest } from '../helpers/fs-conformance'
import { leftoverMounts, makeVolume, mountVolume, withFuse } from './support'

withFuse(() => {
  t.test('a mount over 4 servers', async (t) => {
    const vol = await makeVolume(t, { chunkSize: '64KiB' })
    const m = await mountVolume(t, vol)
    const at = (p: string) => `${m.mnt}${p}`
    const fs: FsUnderTest = {
      mkdir: (p, mode) => mkdir(at(p), mode),
      writeFile: (p, data) => writeFile(at(p), data),
      readFile: (p) => readFile(at(p)),
      async stat(p) {
        const s = await stat(at(p))
        return { ino: s.ino, mode: s.mode, nlink: s.nlink, size: s.size, mtimeMs: s.mtimeMs }
      },
      readdir: (p) => readdir(at(p)),
      rename: (a, b) => rename(at(a), at(b)),
      unlink: (p) => unlink(at(p)),
      rmdir: (p) => rmdir(at(p)),
      truncate: (p, n) => truncate(at(p), n),
      link: (a, b) => link(at(a), at(b)),
      symlink: (target, p) => symlink(target, at(p)),
      readlink: (p) => readlink(at(p)),
      chmod: (p, mode) => chmod(at(p), mode),
      utimes: (p, a, mt) => utimes(at(p), a / 1000, mt / 1000),
    }
    fsConformance(t, fs) // the mount's teardown (support.ts) unmounts it
  })

  t.test('no mount is left behind', async (t) => {
    t.same(await leftoverMounts(), [], 'none of this file\'s mount points is in /proc/mounts')
  })
})
