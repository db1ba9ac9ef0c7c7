// Rendezvous (highest-random-weight) hashing: every server gets a score for a key, and the key's
// servers are the ones with the highest scores. Adding a server moves only the keys for which the
// new server now scores among the top R; removing one moves only the keys it held.
import { createHash } from 'node:crypto'

/** The score of one server for one key: the first 8 bytes of SHA-256(serverId | key), big-endian. */
export function score(serverId: string, key: string): bigint {
  return createHash('sha256').update(`${serverId}|${key}`).digest().readBigUInt64BE(0)
}

/**
 * The servers in rank order for `key` (highest score first); ties (practically impossible) are
 * broken by the server id so every client agrees.
 */
export function rankIds(serverIds: readonly string[], key: string): string[] {
  return rankBy(serverIds, (id) => id, key)
}

/** Same as rankIds, for arbitrary items with a placement id. */
export function rankBy<T>(items: readonly T[], placementId: (item: T) => string, key: string): T[] {
  const scored = items.map((item) => {
    const id = placementId(item)
    return { item, id, s: score(id, key) }
  })
  scored.sort((a, b) => (a.s === b.s ? (a.id < b.id ? -1 : a.id > b.id ? 1 : 0) : a.s > b.s ? -1 : 1))
  return scored.map((x) => x.item)
}

/** The R home servers of a key. */
export function place(serverIds: readonly string[], key: string, replicas: number): string[] {
  return rankIds(serverIds, key).slice(0, replicas)
}
