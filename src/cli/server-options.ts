// `edfs server`'s options in one table — flag, default, help — and the schema that checks them on
// start: every wrong option is named by its flag, with what it expects.
import { Command, Option } from 'commander'
import path from 'node:path'
import { z } from 'zod'
import { parseListenAddress } from '../protocol'
import { DEFAULT_MAX_BLOB_SIZE, DEFAULT_REQUEST_TIMEOUT_MS, DEFAULT_SCRUB_PERIOD_MS } from '../../servers/defaults'
import { UsageError } from './errors'
import { issueLines } from './schema-issues'
import { formatSize, parseSize } from '../protocol'

interface OptionRow {
  flags: string
  help: string
  /** As typed on the command line; absent: off or required. */
  default?: string
}

/** The table: the order of `edfs server --help` and of docs/server.md. */
export const SERVER_OPTIONS = {
  data: { flags: '--data <dir>', help: 'data directory (created if missing; required)' },
  host: { flags: '--host <address>', help: 'address to listen on (0.0.0.0 or :: for every interface)', default: '127.0.0.1' },
  port: { flags: '--port <port>', help: 'port to listen on (0: any free port)', default: '7001' },
  tlsCert: { flags: '--tls-cert <file>', help: 'PEM certificate: serve HTTPS (needs --tls-key; `edfs tls init` makes one)' },
  tlsKey: { flags: '--tls-key <file>', help: 'PEM private key of --tls-cert' },
  maxBlobSize: { flags: '--max-blob-size <size>', help: 'largest blob accepted', default: formatSize(DEFAULT_MAX_BLOB_SIZE).replace(' ', '') },
  requestTimeout: { flags: '--request-timeout <ms>', help: 'longest silence inside a request body, in ms', default: String(DEFAULT_REQUEST_TIMEOUT_MS) },
  scrubPeriod: { flags: '--scrub-period <days>', help: 'check every stored copy against its hash once per this many days, in the background (0: off)', default: String(DEFAULT_SCRUB_PERIOD_MS / 86_400_000) },
  metrics: { flags: '--metrics <[host:]port>', help: 'serve Prometheus metrics at http://HOST:PORT/metrics (a bare port: 127.0.0.1)' },
  advertise: { flags: '--advertise [name]', help: 'publish this server on the LAN over mDNS (_edfs._tcp) for `edfs init --discover`; NAME defaults to HOSTNAME:PORT' },
} as const satisfies Record<string, OptionRow>

type Key = keyof typeof SERVER_OPTIONS

/** Adds the table's options to `cmd` (the `server` command). */
export function addServerOptions(cmd: Command): Command {
  for (const row of Object.values(SERVER_OPTIONS) as OptionRow[]) {
    const opt = new Option(row.flags, row.help)
    cmd.addOption(row.default === undefined ? opt : opt.default(row.default))
  }
  return cmd
}

const parsed = <T>(parse: (text: string) => T) =>
  z.string().transform((text, ctx) => {
    try {
      return parse(text)
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message })
      return z.NEVER
    }
  })

const LOOPBACK = /^(127\.|::1$|localhost$)/

const ServerOptionsSchema = z
  .object({
    data: z.string({ error: 'required: the server\'s data directory' }).min(1).transform((d) => path.resolve(d)),
    host: z.string().min(1, 'an address, e.g. 127.0.0.1 or 0.0.0.0'),
    port: z.string().regex(/^\d{1,5}$/, 'a port number 0..65535').transform(Number).refine((p) => p <= 65535, 'a port number 0..65535'),
    tlsCert: z.string().optional(),
    tlsKey: z.string().optional(),
    maxBlobSize: parsed(parseSize).refine((n) => n >= 1, 'at least 1 byte'),
    requestTimeout: z.string().regex(/^\d+$/, 'milliseconds, e.g. 60000').transform(Number).refine((n) => n >= 1, 'at least 1 ms'),
    scrubPeriod: z.string().regex(/^\d+(\.\d+)?$/, 'days, e.g. 7 (0: no background scrub)').transform((d) => Math.round(Number(d) * 86_400_000)),
    metrics: parsed(parseListenAddress).optional(),
    advertise: z.union([z.literal(true), z.string().min(1).max(63, 'at most 63 characters (a DNS label)')]).optional(),
  })

/** Rules across options, checked on the raw values so they are reported beside the others. */
function crossIssues(raw: Record<string, unknown>): { key: Key; message: string }[] {
  const issues: { key: Key; message: string }[] = []
  if (!!raw.tlsCert !== !!raw.tlsKey) issues.push({ key: raw.tlsCert ? 'tlsKey' : 'tlsCert', message: '--tls-cert and --tls-key go together' })
  if (raw.advertise !== undefined && typeof raw.host === 'string' && LOOPBACK.test(raw.host)) {
    issues.push({ key: 'advertise', message: `the server listens on ${raw.host}, which no other machine reaches: add --host 0.0.0.0 (or a LAN address)` })
  }
  return issues
}

export type ServerRunOptions = z.infer<typeof ServerOptionsSchema>

/** Checks commander's values against the schema; a UsageError names each wrong option by its flag. */
export function parseServerOptions(raw: Record<string, unknown>): ServerRunOptions {
  const r = ServerOptionsSchema.safeParse(raw)
  const cross = crossIssues(raw)
  if (r.success && cross.length === 0) return r.data
  const issues = [...(r.success ? [] : r.error.issues), ...cross.map((c) => ({ path: [c.key], message: c.message }))]
  const flag = (p: PropertyKey[]) => SERVER_OPTIONS[p[0] as Key]?.flags.split(' ')[0] ?? String(p[0])
  if (issues.length === 1) throw new UsageError(`${issueLines(issues, flag).trim()} (see edfs server --help)`)
  throw new UsageError(`invalid options of edfs server (see edfs server --help):\n${issueLines(issues, flag)}`)
}

/** The table as Markdown, for docs/server.md (a test keeps the two equal). */
export function serverOptionsMarkdown(): string {
  const rows = (Object.values(SERVER_OPTIONS) as OptionRow[]).map((r) => `| \`${r.flags}\` | ${r.default === undefined ? '–' : `\`${r.default}\``} | ${r.help.replace(/\|/g, '\\|')} |`)
  return ['| option | default | what it does |', '|---|---|---|', ...rows].join('\n')
}
