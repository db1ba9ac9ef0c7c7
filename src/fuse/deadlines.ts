// Every FUSE operation gets an answer: one the file system has not answered within its limit is
// answered with ETIMEDOUT (the caller sees "Connection timed out" instead of hanging in the kernel),
// and its late answer is dropped. One sweep over the operations in flight does it, a few times per
// limit: fuse-native's own timeouts armed and cleared a timer for every call (a cold `ls -lR` is
// 4 % faster without them; docs/mount.md).
import { constants } from 'node:os'
import type { FuseOps } from './binding'

const ETIMEDOUT = -(constants.errno.ETIMEDOUT ?? 110)

type Answer = (...result: unknown[]) => void

interface InFlight {
  op: string
  path: unknown
  limit: number
  deadline: number
  answer: Answer
}

export interface Deadlines {
  ops: FuseOps
  /** Operations waiting for their answer now. */
  readonly inFlight: number
  /** Stops the sweep (at unmount). */
  stop(): void
}

/**
 * `ops` with a deadline on each call: `limitMs(op)` after it started, an unanswered call is
 * answered ETIMEDOUT and `log` says which. The callback is the one function among a call's
 * arguments (its position differs between operations).
 */
export function withDeadlines(ops: FuseOps, limitMs: (op: string) => number, log: (line: string) => void): Deadlines {
  const inFlight = new Set<InFlight>()
  const wrapped: Record<string, unknown> = {}
  let shortest = Infinity
  for (const [op, fn] of Object.entries(ops) as [string, unknown][]) {
    if (typeof fn !== 'function') continue
    const limit = limitMs(op)
    shortest = Math.min(shortest, limit)
    wrapped[op] = (...args: unknown[]) => {
      const at = args.findIndex((a) => typeof a === 'function')
      if (at < 0) return fn.apply(ops, args)
      const entry: InFlight = { op, path: args[0], limit, deadline: Date.now() + limit, answer: args[at] as Answer }
      inFlight.add(entry)
      args[at] = (...result: unknown[]) => {
        if (inFlight.delete(entry)) entry.answer(...result)
      }
      return fn.apply(ops, args)
    }
  }
  const sweep = () => {
    const now = Date.now()
    for (const e of inFlight) {
      if (e.deadline > now) continue
      inFlight.delete(e)
      log(`edfs fuse: ${e.op} ${String(e.path)}: no answer within ${e.limit} ms (ETIMEDOUT)`)
      e.answer(ETIMEDOUT)
    }
  }
  // A quarter of the shortest limit, at most a second: an answer comes at most 25 % (or 1 s) late.
  const timer = setInterval(sweep, Math.max(10, Math.min(1000, Math.floor(shortest / 4))))
  timer.unref()
  return {
    ops: wrapped as unknown as FuseOps,
    get inFlight() {
      return inFlight.size
    },
    stop: () => clearInterval(timer),
  }
}
