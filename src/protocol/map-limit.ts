// The one worker pool: runs an async function over a list with at most `limit` calls in flight,
// results in input order. After the first failure no new call starts; the promise rejects with that
// failure once the calls in flight have settled (nothing keeps running behind the caller's back).
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  let failure: { err: unknown } | null = null
  const worker = async (): Promise<void> => {
    while (!failure && next < items.length) {
      const i = next++
      try {
        out[i] = await fn(items[i]!, i)
      } catch (err) {
        failure ??= { err }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker))
  if (failure) throw (failure as { err: unknown }).err
  return out
}
