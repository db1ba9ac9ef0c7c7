// The HTTP API, version 1. docs/protocol.md describes each route.

export const API = '/v1'

export const ROUTES = {
  health: `${API}/health`,
  stats: `${API}/stats`,
  challenge: `${API}/auth/challenge`,
  login: `${API}/auth/login`,
  password: `${API}/auth/password`,
  blobs: `${API}/blobs`,
  blobsHave: `${API}/blobs/have`,
  blobsVerify: `${API}/blobs/verify`,
  scrub: `${API}/scrub`,
  blob: (id: string) => `${API}/blobs/${id}`,
  record: (name: string) => `${API}/records/${name}`,
} as const

export const HEADERS = {
  authorization: 'authorization',
  contentSha256: 'x-edfs-content-sha256',
  version: 'x-edfs-version',
  expectVersion: 'x-edfs-expect-version',
} as const

/** Most ids one `have` query may carry. */
export const MAX_HAVE_IDS = 10_000
/** Most ids one `verify` query may carry (each is read and hashed on the server). */
export const MAX_VERIFY_IDS = 256
/** Most entries one listing page returns. */
export const MAX_LIST_LIMIT = 10_000

export interface HealthBody {
  id: string
  /** Opaque id of the file system holding the data: equal on servers that share a disk (absent from older servers). */
  disk?: string
  version: string
  freeBytes: number
  totalBytes: number
  /** Copies this server found corrupt and moved aside, all users (absent from older servers). */
  quarantined?: number
  /** The sizes are configured, not measured (S3 members: object stores report none). */
  capacityConfigured?: boolean
}

export interface StatsBody {
  bytesStored: number
  blobCount: number
  bytesServed: number
  bytesReceived: number
  requestsServed: number
  /** This user's copies found corrupt and moved aside (quarantine/), absent from older servers. */
  quarantined?: number
  scrub?: ScrubStatus
}

/** POST /v1/blobs/verify: each id asked, by what its stored copy is now. */
export interface VerifyBody {
  /** The copy hashes to its id. */
  ok: string[]
  /** The copy did not, and has been quarantined (it is gone from this server now). */
  bad: string[]
  /** No copy here. */
  missing: string[]
}

/** GET/POST /v1/scrub: the user's own scrub pass, and the server's background pass. */
export interface ScrubStatus {
  running: boolean
  /** Blobs checked and found bad by the user's latest pass. */
  checked: number
  bad: number
  startedAt: number | null
  finishedAt: number | null
  /** When the background pass over all blobs last completed (ms since epoch); null before the first. */
  lastBackgroundPassFinishedAt: number | null
}

export interface BlobListBody {
  blobs: { id: string; size: number; mtimeMs: number }[]
  /** Pass as `after` to get the next page; absent on the last page. */
  next?: string
}

export interface ChallengeBody {
  salt: string
  N: number
  r: number
  p: number
  serverNonce: string
}

export interface LoginBody {
  session: string
  expiresAt: number
  serverSignature: string
}

/** Bytes [start, end) of a blob. */
export interface ByteRange {
  /** First byte, inclusive. */
  start: number
  /** Last byte, exclusive. */
  end: number
}

/** The HTTP Range header value for a byte range (HTTP's end is inclusive). */
export function rangeHeader(range: ByteRange): string {
  return `bytes=${range.start}-${range.end - 1}`
}
