// The one worker pool: bounded concurrency, results in input order, and after a failure nothing new
// starts and nothing is left running when the promise settles.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { mapLimit } from '../../src/protocol'

t.test('at most `limit` calls at once, results in input order', async (t) => {
  let running = 0
  let peak = 0
  const out = await mapLimit([5, 1, 4, 2, 3], 2, async (ms, i) => {
    peak = Math.max(peak, ++running)
    await sleep(ms)
    running--
    return `${i}:${ms}`
  })
  t.same(out, ['0:5', '1:1', '2:4', '3:2', '4:3'])
  t.equal(peak, 2)
  t.same(await mapLimit([], 4, async () => 1), [], 'an empty list')
})

t.test('the first failure stops new calls and rejects once the calls in flight settled', async (t) => {
  const started: number[] = []
  const finished: number[] = []
  const items = Array.from({ length: 20 }, (_, i) => i)
  await t.rejects(
    mapLimit(items, 3, async (i) => {
      started.push(i)
      if (i === 1) throw new Error('item 1 failed')
      await sleep(10)
      finished.push(i)
    }),
    { message: 'item 1 failed' },
  )
  t.same(started, [0, 1, 2], 'nothing starts after the failure')
  t.same(finished.sort(), [0, 2], 'the calls in flight finished before the rejection')
})
