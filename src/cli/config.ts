// The client's config file: which servers, which user, the volume's parameters. The password is
// never stored here; the wrapped key file sits next to it (and on the servers).
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { UsageError } from './errors'

export interface ClientConfig {
  format: 'edfs-config'
  version: 1
  user: string
  servers: { url: string; id?: string }[]
  replicas: number
  writeQuorum: number
  timeoutMs: number
  /** PEM file of a CA to trust for https servers. */
  ca?: string
  volumeId: string
  chunkSize: number
}

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
  let c: ClientConfig
  try {
    c = JSON.parse(text) as ClientConfig
  } catch {
    throw new UsageError(`config ${path} is not valid JSON`)
  }
  if (c.format !== 'edfs-config' || c.version !== 1 || !Array.isArray(c.servers) || !c.user) {
    throw new UsageError(`config ${path} is not an edfs config (version 1)`)
  }
  return c
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
