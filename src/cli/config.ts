// The client's config file: which servers, which user, the volume's parameters. The password is
// never stored here; the wrapped key file sits next to it (and on the servers).
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { z } from 'zod'
import { ClusterConfigError, memberUrl } from '../cluster'
import { isUserName } from '../protocol'
import { UsageError } from './errors'
import { issueLines, jsonPath } from './schema-issues'

/** A member URL from the command line, in its canonical spelling; UsageError says what is wrong. */
export function memberArg(text: string): string {
  try {
    return memberUrl(text)
  } catch (err) {
    if (err instanceof ClusterConfigError) throw new UsageError(err.message)
    throw err
  }
}

const serverUrl = z.string().refine((u) => {
  try {
    return memberUrl(u) !== ''
  } catch {
    return false
  }
}, 'an http://, https:// or s3:// member URL')

/** The config file, checked on load: every field, with a message that names it. */
export const ClientConfigSchema = z.object({
  format: z.literal('edfs-config'),
  version: z.literal(1),
  user: z.string().refine(isUserName, 'a user name: a-z, 0-9, ".", "_", "-" (up to 64)'),
  servers: z.array(z.object({ url: serverUrl, id: z.string().regex(/^[0-9a-f]{32,64}$/, 'a server id (hex)').optional() })).min(1, 'at least one server'),
  replicas: z.number().int().min(1),
  writeQuorum: z.number().int().min(1),
  timeoutMs: z.number().int().min(1),
  /** PEM file of a CA to trust for https servers (absolute). */
  ca: z.string().min(1).optional(),
  volumeId: z.string(),
  chunkSize: z.number().int().min(64 * 1024).max(64 * 1024 * 1024),
})

export type ClientConfig = z.infer<typeof ClientConfigSchema>

export function defaultConfigPath(): string {
  return join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'edfs', 'config.json')
}

/** --config FILE, else EDFS_CONFIG, else ~/.config/edfs/config.json. */
export function configPath(flag?: string): string {
  return flag || process.env.EDFS_CONFIG || defaultConfigPath()
}

export function keyFilePath(config: string): string {
  return join(dirname(config), 'keyfile.json')
}

export async function loadConfig(path: string): Promise<ClientConfig> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new UsageError(`no config at ${path}: run \`edfs init --servers URL,... --user NAME\` first (or pass --config FILE)`)
    }
    throw new UsageError(`cannot read config ${path}: ${(err as Error).message}`)
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw new UsageError(`config ${path} is not valid JSON: ${(err as Error).message}`)
  }
  const r = ClientConfigSchema.safeParse(raw)
  if (!r.success) {
    throw new UsageError(`config ${path} is not a valid edfs config (version 1):\n${issueLines(r.error.issues, jsonPath)}\n(fix it, or write a new one with edfs init --force)`)
  }
  return r.data
}

/** Writes a file atomically with mode 0600 (temp file, then rename). */
export async function writePrivateFile(path: string, data: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, data, { mode: 0o600 })
  await rename(tmp, path)
}

export async function saveConfig(path: string, config: ClientConfig): Promise<void> {
  await writePrivateFile(path, `${JSON.stringify(config, null, 2)}\n`)
}
