// How the CLI reports a failure: one clear line on stderr and a non-zero exit code, no stack trace
// unless EDFS_DEBUG is set.

/** An error whose message is meant for the user as it is. */
export class UsageError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message)
    this.name = 'UsageError'
  }
}

export function reportAndExit(err: unknown): never {
  const e = err as Error & { exitCode?: number }
  process.stderr.write(`edfs: ${e?.message ?? String(err)}\n`)
  if (process.env.EDFS_DEBUG && e?.stack) process.stderr.write(`${e.stack}\n`)
  process.exit(typeof e?.exitCode === 'number' ? e.exitCode : 1)
}
