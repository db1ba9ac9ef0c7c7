// Waiting in tests: a pause, and polling a condition until it holds or a deadline passes.

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/** Polls `check` every `stepMs` until it holds (true) or `ms` passed (false). */
export async function waitFor(ms: number, check: () => boolean | Promise<boolean>, stepMs = 250): Promise<boolean> {
  const deadline = Date.now() + ms
  for (;;) {
    if (await check()) return true
    if (Date.now() >= deadline) return false
    await sleep(stepMs)
  }
}
