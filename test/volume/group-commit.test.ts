// Group commit without a volume: a burst costs two commits, every caller waits for a commit that
// began after it asked, and a failed commit fails only its own callers.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { GroupCommit } from '../../src/volume/group-commit'

t.test('a burst during a commit shares the next one', async (t) => {
  let changes = 0
  const seen: number[] = [] // the number of changes each commit saw when it began
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  const group = new GroupCommit(async () => {
    seen.push(changes)
    if (seen.length === 1) await gate // the first commit is still running while the burst arrives
  })
  changes++
  const first = group.commit()
  await sleep(1)
  const burst = Array.from({ length: 9 }, () => {
    changes++
    return group.commit()
  })
  release()
  await Promise.all([first, ...burst])
  t.same(seen, [1, 10], 'ten callers, two commits: the second began with every change of the burst')
  await group.commit()
  t.equal(seen.length, 3, 'a later call gets a commit of its own')
})

t.test('a caller never resolves on a commit that began before it asked', async (t) => {
  let changes = 0
  const began: number[] = []
  const group = new GroupCommit(async () => {
    began.push(changes)
    await sleep(5)
  })
  for (let round = 0; round < 20; round++) {
    const mine = ++changes
    await group.commit()
    t.ok(began.at(-1)! >= mine, `round ${round}: the commit it waited for began after change ${mine}`)
  }
})

t.test('a failed commit rejects its callers; the next commit runs', async (t) => {
  let fail = true
  let runs = 0
  const group = new GroupCommit(async () => {
    runs++
    await sleep(5)
    if (fail) throw new Error('servers unreachable')
  })
  await t.rejects(group.commit(), { message: 'servers unreachable' })
  fail = false
  await group.commit()
  t.equal(runs, 2, 'the failure did not stick')
})
