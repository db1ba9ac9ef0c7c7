// Deadlines on FUSE calls without a timer per call: an unanswered call is answered ETIMEDOUT once
// its limit has passed (and said so in the log), a late answer is dropped, an answered call is
// answered once, and the callback is found wherever an operation has it.
import t from 'tap'
import { constants } from 'node:os'
import type { FuseOps } from '../../src/fuse/binding'
import { withDeadlines } from '../../src/fuse/deadlines'
import { sleep } from '../helpers/wait'

const ETIMEDOUT = -constants.errno.ETIMEDOUT

t.test('unanswered calls time out; answered ones are answered once', async (t) => {
  const late: (() => void)[] = []
  const ops = {
    getattr(_path: string, cb: (err: number) => void) {
      cb(0)
    },
    readlink(_path: string, cb: (err: number, target?: string) => void) {
      late.push(() => cb(0, 'too late'))
    },
    // The callback in third place, and a caller argument after it.
    mkdir(_path: string, _mode: number, cb: (err: number) => void) {
      late.push(() => cb(0))
    },
    fsync(_path: string, _datasync: number, _fd: number, cb: (err: number) => void) {
      late.push(() => cb(0))
    },
  } as unknown as FuseOps
  const lines: string[] = []
  const d = withDeadlines(ops, (op) => (op === 'fsync' ? 5_000 : 200), (line) => lines.push(line))
  t.teardown(() => d.stop())
  const answers: [string, unknown[]][] = []
  const record = (what: string) => (...result: unknown[]) => answers.push([what, result])

  d.ops.getattr('/a', record('getattr'))
  t.same(answers, [['getattr', [0]]], 'an answer in time goes through at once')
  d.ops.readlink!('/l', record('readlink'))
  d.ops.mkdir!('/d', 0o755, record('mkdir'), { uid: 1, gid: 1 })
  d.ops.fsync!('/f', 0, 7, record('fsync'))
  t.equal(d.inFlight, 3)
  const started = Date.now()
  while (answers.length < 3 && Date.now() - started < 5_000) await sleep(20)
  const took = Date.now() - started
  t.same(answers.slice(1), [['readlink', [ETIMEDOUT]], ['mkdir', [ETIMEDOUT]]], 'the two short ones: ETIMEDOUT')
  t.ok(took >= 190 && took < 1_000, `after their 200 ms limit, at most a quarter late (${took} ms)`)
  t.match(lines, [/readlink \/l: no answer within 200 ms \(ETIMEDOUT\)/, /mkdir \/d: no answer within 200 ms/])
  t.equal(d.inFlight, 1, 'the fsync, with its longer limit, still waits')
  for (const answer of late) answer()
  t.same(answers.slice(1), [['readlink', [ETIMEDOUT]], ['mkdir', [ETIMEDOUT]], ['fsync', [0]]], 'late answers dropped; the fsync answered in time')
  t.equal(d.inFlight, 0)
})
