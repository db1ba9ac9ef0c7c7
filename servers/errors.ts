// An error answer the server sends: a protocol error code (see src/protocol/errors.ts), a message
// for people, and optional extra body fields or headers.
import { ERROR_STATUS, ErrorCode } from '../src/protocol'

export class HttpError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
    this.name = 'HttpError'
  }

  get status(): number {
    return ERROR_STATUS[this.code]
  }
}

/** The client went away in the middle of its request: nobody is left to answer. */
export class ClientGoneError extends Error {
  constructor() {
    super('the client closed the connection before the request was complete')
    this.name = 'ClientGoneError'
  }
}

/** Maps file system errors that clients should see as such (disk full) to an HttpError. */
export function fsErrorToHttp(err: unknown): HttpError | null {
  const code = (err as NodeJS.ErrnoException)?.code
  if (code === 'ENOSPC' || code === 'EDQUOT') return new HttpError('insufficient-storage', 'the server is out of disk space')
  return null
}
