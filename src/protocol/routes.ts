// The HTTP API, version 1. docs/protocol.md describes each route.

export const API = '/v1'

export const ROUTES = {
  health: `${API}/health`,
  stats: `${API}/stats`,
  challenge: `${API}/auth/challenge`,
  login: `${API}/auth/login`,
  blobs: `${API}/blobs`,
  blobsHave: `${API}/blobs/have`,
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
/** Most entries one listing page returns. */
export const MAX_LIST_LIMIT = 10_000

export interface HealthBody {
  id: string
  /** Opaque id of the file system holding the data: equal on servers that share a disk (absent from older servers). */
  disk?: string
  version: string
  freeBytes: number
  totalBytes: number
}

export interface StatsBody {
  bytesStored: number
  blobCount: number
  bytesServed: number
  bytesReceived: number
  requestsServed: number
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
