// What a member URL may say, and its one canonical spelling (members are compared, remembered and
// ranked by it). Two kinds: an edfs server (http:// or https://HOST:PORT) and an S3 bucket with an
// optional key prefix (s3://BUCKET/PREFIX?endpoint=...&region=...&path-style=1&profile=...&capacity=...).
import { parseSize } from '../protocol'
import { ClusterConfigError } from './errors'

export interface S3Location {
  bucket: string
  /** Key prefix, '' or ending in '/'. */
  prefix: string
  /** http(s)://HOST[:PORT] of an S3-compatible store; AWS when absent. */
  endpoint?: string
  region?: string
  /** Bucket in the path (http://HOST/BUCKET/KEY), as MinIO and Ceph RGW usually need. */
  pathStyle: boolean
  /** A profile of ~/.aws/credentials and ~/.aws/config. */
  profile?: string
  /** What `df` reports as this member's size: object stores report none. */
  capacityBytes?: number
}

export type MemberLocation = { kind: 'server'; url: string } | { kind: 's3'; url: string; s3: S3Location }

const S3_OPTIONS = ['endpoint', 'region', 'path-style', 'profile', 'capacity'] as const
/** S3 bucket naming rules (3-63 of lowercase letters, digits, dots and hyphens). */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/

/** Parses a member URL; ClusterConfigError says what is wrong with it. */
export function parseMemberUrl(text: string): MemberLocation {
  let u: URL
  try {
    u = new URL(text)
  } catch {
    throw new ClusterConfigError(`not a server URL: ${JSON.stringify(text)} (expected http://HOST:PORT, https://HOST:PORT or s3://BUCKET/PREFIX)`)
  }
  if (u.protocol === 'http:' || u.protocol === 'https:') {
    if (u.pathname !== '/' || u.search || u.username || u.password) throw new ClusterConfigError(`a server URL is http(s)://HOST:PORT and nothing more: ${text}`)
    return { kind: 'server', url: u.origin }
  }
  if (u.protocol !== 's3:') throw new ClusterConfigError(`a member URL is http://, https:// or s3://: ${text}`)
  if (u.username || u.password) throw new ClusterConfigError(`s3:// URLs carry no credentials (they come from the environment, ~/.aws/credentials or profile=): ${redact(u)}`)
  const bucket = u.hostname
  if (!BUCKET.test(bucket)) throw new ClusterConfigError(`not an S3 bucket name: ${JSON.stringify(bucket)} in ${text}`)
  const path = decodeURIComponent(u.pathname).replace(/^\/+/, '').replace(/\/+$/, '')
  if (path.includes('//') || path.split('/').some((p) => p === '.' || p === '..')) throw new ClusterConfigError(`an S3 prefix is a plain key path: ${JSON.stringify(path)} in ${text}`)
  const s3: S3Location = { bucket, prefix: path ? `${path}/` : '', pathStyle: false }
  for (const [key, value] of u.searchParams) {
    if (!(S3_OPTIONS as readonly string[]).includes(key)) throw new ClusterConfigError(`unknown s3:// option ${JSON.stringify(key)} in ${text} (known: ${S3_OPTIONS.join(', ')})`)
    if (key === 'endpoint') {
      let e: URL
      try {
        e = new URL(value)
      } catch {
        throw new ClusterConfigError(`endpoint= is not a URL: ${JSON.stringify(value)}`)
      }
      if ((e.protocol !== 'http:' && e.protocol !== 'https:') || e.pathname !== '/' || e.search) throw new ClusterConfigError(`endpoint= is http(s)://HOST[:PORT]: ${JSON.stringify(value)}`)
      s3.endpoint = e.origin
    } else if (key === 'region') {
      if (!/^[a-z0-9-]{1,40}$/.test(value)) throw new ClusterConfigError(`not a region: ${JSON.stringify(value)}`)
      s3.region = value
    } else if (key === 'path-style') {
      if (!['0', '1', 'true', 'false'].includes(value)) throw new ClusterConfigError(`path-style= is 1 or 0, not ${JSON.stringify(value)}`)
      s3.pathStyle = value === '1' || value === 'true'
    } else if (key === 'profile') {
      if (!/^[\w.@+-]{1,64}$/.test(value)) throw new ClusterConfigError(`not a profile name: ${JSON.stringify(value)}`)
      s3.profile = value
    } else {
      let bytes: number
      try {
        bytes = parseSize(value)
      } catch (err) {
        throw new ClusterConfigError(`capacity=: ${(err as Error).message}`)
      }
      if (bytes <= 0) throw new ClusterConfigError(`capacity= must be more than 0: ${JSON.stringify(value)}`)
      s3.capacityBytes = bytes
    }
  }
  return { kind: 's3', url: s3Url(s3), s3 }
}

/** The canonical spelling of a member URL. */
export function memberUrl(text: string): string {
  return parseMemberUrl(text).url
}

function s3Url(s: S3Location): string {
  const q = new URLSearchParams()
  if (s.endpoint) q.set('endpoint', s.endpoint)
  if (s.region) q.set('region', s.region)
  if (s.pathStyle) q.set('path-style', '1')
  if (s.profile) q.set('profile', s.profile)
  if (s.capacityBytes) q.set('capacity', String(s.capacityBytes))
  const qs = q.toString()
  return `s3://${s.bucket}/${s.prefix.replace(/\/$/, '')}${qs ? `?${qs}` : ''}`
}

function redact(u: URL): string {
  return `s3://***@${u.host}${u.pathname}`
}
