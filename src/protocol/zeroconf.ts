// Zeroconf (mDNS + DNS-SD) for edfs servers: a server publishes `_edfs._tcp` with its id and
// whether it speaks TLS; a client browses the LAN for a while and collects what answered.
// bonjour-service does the wire work (multicast-dns underneath).
import { Bonjour, Service } from 'bonjour-service'
import { setTimeout as sleep } from 'node:timers/promises'

/** DNS-SD service type: `_edfs._tcp.local`. */
export const ZEROCONF_TYPE = 'edfs'
/** Version of the TXT record's keys (`v`): id, tls. */
const TXT_VERSION = '1'

export interface Advertisement {
  /** Sends goodbye packets, then closes the mDNS socket. */
  stop(): Promise<void>
}

export function advertise(o: { name: string; port: number; id: string; tls: boolean; log: (line: string) => void }): Advertisement {
  const bonjour = new Bonjour(undefined, (err: Error) => o.log(`mDNS: ${err.message}`))
  bonjour.publish({ name: o.name, type: ZEROCONF_TYPE, port: o.port, txt: { v: TXT_VERSION, id: o.id, tls: o.tls ? '1' : '0' } })
  let stopped: Promise<void> | undefined
  return {
    stop: () => (stopped ??= new Promise((resolve) => bonjour.unpublishAll(() => bonjour.destroy(() => resolve())))),
  }
}

export interface FoundServer {
  /** The instance name it was published under. */
  name: string
  id: string
  tls: boolean
  port: number
  /** Where it may be reached: its A/AAAA records, then the address the answer came from. */
  addresses: string[]
}

/** Browses for `ms` and returns the edfs servers that answered, one per server id. */
export async function discover(ms: number, log: (line: string) => void): Promise<FoundServer[]> {
  const bonjour = new Bonjour(undefined, (err: Error) => log(`mDNS: ${err.message}`))
  const found = new Map<string, FoundServer>()
  const browser = bonjour.find({ type: ZEROCONF_TYPE }, (s: Service) => {
    const server = fromService(s)
    if (server && !found.has(server.id)) found.set(server.id, server)
  })
  await sleep(ms)
  browser.stop()
  await new Promise<void>((resolve) => bonjour.destroy(() => resolve()))
  return [...found.values()].sort((a, b) => a.name.localeCompare(b.name))
}

function fromService(s: Service): FoundServer | undefined {
  const txt = (s.txt ?? {}) as Record<string, unknown>
  const id = String(txt.id ?? '')
  if (!/^[0-9a-f]{32,64}$/.test(id) || !Number.isInteger(s.port) || s.port < 1 || s.port > 65535) return undefined
  const addresses = [...(s.addresses ?? [])]
  if (s.referer?.address && !addresses.includes(s.referer.address)) addresses.push(s.referer.address)
  // IPv4 first; an IPv6 link-local address needs a zone we do not know.
  const usable = addresses.filter((a) => !/^fe80:/i.test(a)).sort((a, b) => Number(a.includes(':')) - Number(b.includes(':')))
  return { name: s.name, id, tls: String(txt.tls) === '1', port: s.port, addresses: usable }
}

/** The URL of a found server at one of its addresses. */
export function foundUrl(s: FoundServer, address: string): string {
  return `${s.tls ? 'https' : 'http'}://${address.includes(':') ? `[${address}]` : address}:${s.port}`
}
