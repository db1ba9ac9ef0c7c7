// Group commit: callers that ask for a commit while one is running share the next one, so a burst
// of changes costs two commits, not one per change.
export class GroupCommit {
  private running: Promise<void> = Promise.resolve()
  private queued: Promise<void> | null = null

  constructor(private readonly work: () => Promise<void>) {}

  /** Resolves once a commit that started after this call has finished. */
  commit(): Promise<void> {
    if (this.queued) return this.queued
    const next = this.running.catch(() => undefined).then(() => {
      this.queued = null
      return this.work()
    })
    this.queued = next
    this.running = next
    return next
  }
}
