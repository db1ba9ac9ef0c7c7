// 4 servers, R = 2: with any one server down, ls, get and put work and ls marks files degraded; with
// two adjacent servers down (both replicas of some chunk), affected files show unreadable and get
// fails cleanly: non-zero, naming the missing chunks, leaving no partial file.
import t from 'tap'
import { readFile, readdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { blobIds, randomFile, run, makeCliVolume } from './cli-helpers'

t.test('4 servers, R = 2, one or two down', async (t) => {
  const v = await makeCliVolume(t, 4)
  const src = path.join(v.dir, 'src')
  // 4 MiB = 16 chunks of 256 KiB: each server holds some chunk of each big file.
  for (let i = 0; i < 4; i++) await randomFile(path.join(src, `big${i}`), 4 * 1024 * 1024)
  await writeFile(path.join(src, 'small.txt'), 'hello\n')
  await v.ok(t, ['put', src, '/f'], { timeoutMs: 120_000 })

  t.test('any one server down: ls, get, put work; ls shows degraded', async (t) => {
    for (const down of v.servers) {
      await down.stop()
      const ls = await v.run(['ls', '-l', '/f'])
      t.equal(ls.code, 0, `ls with ${down.id} down: ${ls.stderr}`)
      t.match(ls.stdout, /big0 {2}\[degraded\]/, 'a file with a chunk on the stopped server is degraded')
      t.notMatch(ls.stdout, /unreadable/)
      const out = path.join(v.dir, `out-${down.id}`)
      const get = await v.run(['get', '/f', out], { timeoutMs: 120_000 })
      t.equal(get.code, 0, `get with ${down.id} down: ${get.stderr}`)
      for (let i = 0; i < 4; i++) t.ok((await readFile(path.join(out, `big${i}`))).equals(await readFile(path.join(src, `big${i}`))), `big${i} intact`)
      const put = await v.run(['put', path.join(src, 'small.txt'), `/small-${down.id}.txt`])
      t.equal(put.code, 0, `put with ${down.id} down: ${put.stderr}`)
      await down.restart()
    }
    const ls = await v.ok(t, ['ls', '/'])
    t.equal(ls.stdout.split('\n').filter((l) => l.startsWith('small-')).length, 4, 'every put made while a server was down is there')
  })

  t.test('two adjacent servers down: unreadable files, get fails cleanly', async (t) => {
    // Adjacent: the pair holding the most chunks that exist on exactly these two servers.
    const held = await Promise.all(v.servers.map(async (s) => new Set(await blobIds(s))))
    let best: [number, number] = [0, 1]
    let bestCount = -1
    for (let a = 0; a < 4; a++) {
      for (let b = a + 1; b < 4; b++) {
        let count = 0
        for (const id of held[a]!) if (held[b]!.has(id) && held.filter((h) => h.has(id)).length === 2) count++
        if (count > bestCount) [best, bestCount] = [[a, b], count]
      }
    }
    t.ok(bestCount > 0, `servers ${best} share ${bestCount} chunks held nowhere else`)
    for (const k of best) await v.servers[k]!.stop()

    const ls = await v.run(['ls', '-l', '/f'])
    t.equal(ls.code, 0, ls.stderr)
    const unreadable = ls.stdout.split('\n').filter((l) => l.endsWith('[unreadable]')).map((l) => l.split(' ').at(-3)!)
    t.ok(unreadable.length > 0, `some files are unreadable: ${unreadable}`)

    const out = path.join(v.dir, 'out-two-down')
    await run('mkdir', [out])
    for (const name of ['big0', 'big1', 'big2', 'big3', 'small.txt']) {
      const r = await v.run(['get', `/f/${name}`, out], { timeoutMs: 120_000 })
      if (unreadable.includes(name)) {
        t.not(r.code, 0, `get of unreadable ${name} fails`)
        t.match(r.stderr, /^edfs: get \/f\/\S+: .*chunk [0-9a-f]{64}.*unavailable/m, 'names the missing chunk')
        t.match(r.stderr, new RegExp(v.servers[best[0]]!.id.slice(0, 8) + '|' + v.servers[best[0]]!.url.replace(/[/.:]/g, '.')), 'names a server it tried')
        t.match(r.stderr, /chunks are on no live server/, 'lists the missing chunks')
      } else {
        t.equal(r.code, 0, `get of complete ${name} works: ${r.stderr}`)
        t.ok((await readFile(path.join(out, name))).equals(await readFile(path.join(src, name))))
      }
    }
    const left = await readdir(out)
    t.same(left.filter((n) => unreadable.includes(n) || n.includes('.part')), [], 'no partial or temporary file left')
    for (const k of best) await v.servers[k]!.restart()
  })
})
