// `edfs init --discover`: the edfs servers the LAN announces over mDNS, each checked at one of its
// addresses (it must answer /v1/health under the id it announced), merged with explicit URLs.
import { readFile } from 'node:fs/promises'
import { HealthBody } from '../protocol'
import { ServerClient } from '../cluster'
import { FoundServer, discover, foundUrl } from '../protocol/zeroconf'

const PROBE_MS = 3000

/** GET /v1/health; unlike the pool's background probe, it keeps the process alive while it waits. */
async function health(url: string, ca: Buffer | undefined): Promise<HealthBody> {
  const client = new ServerClient({ url, user: '', password: '', timeoutMs: PROBE_MS, ca })
  try {
    return await client.health()
  } finally {
    client.close()
  }
}

/** The URL at which a found server answers as itself, or undefined (with the reason logged). */
async function reachable(s: FoundServer, ca: Buffer | undefined, log: (line: string) => void): Promise<string | undefined> {
  const tried: string[] = []
  for (const address of s.addresses) {
    const url = foundUrl(s, address)
    try {
      const h = await health(url, ca)
      if (h.id === s.id) return url
      tried.push(`${url} answers as ${h.id}`)
    } catch (err) {
      tried.push(`${url}: ${(err as Error).message}`)
    }
  }
  log(`edfs: skipped "${s.name}" (id ${s.id}): ${tried.join('; ') || 'no address announced'}`)
  return undefined
}

/**
 * Browses for `waitMs` and returns `explicit` followed by every discovered server that none of the
 * explicit URLs already is (explicit URLs win: they are kept as given).
 */
export async function withDiscovered(explicit: string[], o: { waitMs: number; ca?: string; log: (line: string) => void }): Promise<string[]> {
  const ca = o.ca ? await readFile(o.ca) : undefined
  const [found, explicitIds] = await Promise.all([
    discover(o.waitMs, o.log),
    Promise.all(explicit.map((u) => health(u, ca).then((h) => h.id, () => undefined))),
  ])
  const urls = [...explicit]
  const lines: string[] = []
  for (const s of found) {
    if (explicitIds.includes(s.id)) {
      lines.push(`  ${s.name}  id ${s.id}  (listed in --servers)`)
      continue
    }
    const url = await reachable(s, ca, o.log)
    if (!url) continue
    urls.push(url)
    lines.push(`  ${s.name}  ${url}  id ${s.id}${s.tls ? '  TLS' : ''}`)
  }
  o.log(`edfs: ${found.length} edfs server${found.length === 1 ? '' : 's'} found over mDNS in ${o.waitMs / 1000} s${lines.length ? ':' : ''}`)
  for (const l of lines) o.log(l)
  return urls
}
