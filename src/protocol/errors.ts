// The error body every server answer carries on failure: { error: code, message: text }.

export const ERROR_STATUS = {
  'bad-request': 400,
  'invalid-id': 400,
  'hash-mismatch': 400,
  unauthorized: 401,
  'session-expired': 401,
  'stale-request': 401,
  replayed: 401,
  'not-found': 404,
  'method-not-allowed': 405,
  'version-conflict': 409,
  'payload-too-large': 413,
  'range-not-satisfiable': 416,
  'too-many-attempts': 429,
  'request-timeout': 408,
  internal: 500,
  unavailable: 503,
  'insufficient-storage': 507,
} as const

export type ErrorCode = keyof typeof ERROR_STATUS

export interface ErrorBody {
  error: ErrorCode
  message: string
  /** version-conflict: the version the server holds now (0 when the record is absent). */
  version?: number
}

/** An error answer from a server, as seen by the client. */
export class ServerError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode | 'unknown',
    message: string,
    readonly server: string,
    readonly body?: ErrorBody,
  ) {
    super(`${server}: ${message} (${status} ${code})`)
    this.name = 'ServerError'
  }
}

/**
 * A compare-and-swap refused: the record is at `version` (0: absent), not the one expected. The one
 * error the store port defines for records (src/volume/store.ts re-exports it); both member kinds
 * throw it, so callers test `instanceof` and never a status or a code.
 */
export class VersionConflictError extends ServerError {
  constructor(message: string, server: string, readonly version: number) {
    super(409, 'version-conflict', message, server, { error: 'version-conflict', message, version })
    this.name = 'VersionConflictError'
  }
}

/** The error for a server's error answer: a version conflict gets its own class. */
export function serverErrorOf(status: number, body: ErrorBody | null, server: string): ServerError {
  if (body?.error === 'version-conflict') return new VersionConflictError(body.message, server, typeof body.version === 'number' ? body.version : 0)
  return new ServerError(status, body?.error ?? 'unknown', body?.message ?? `HTTP ${status}`, server, body ?? undefined)
}
