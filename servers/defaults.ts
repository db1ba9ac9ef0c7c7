// The server's defaults, apart from the server itself: the CLI's help text shows them without
// loading the server's modules.
export const DEFAULT_MAX_BLOB_SIZE = 128 * 1024 * 1024
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000
export const DEFAULT_SESSION_TTL_MS = 12 * 3600_000
export const DEFAULT_SCRUB_PERIOD_MS = 7 * 24 * 3600_000
