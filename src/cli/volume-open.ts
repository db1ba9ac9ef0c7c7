// From a config file and a password to a connected cluster, the volume's keys, and an open volume:
// what is this machine's (the config file, the local copy of the key file, the state directory,
// messages that name the CLI's flags) around what is the volume's (src/volume: key files,
// unlocking, the server list, the Volume).
import { readFile } from 'node:fs/promises'
import { Cluster, ClusterConnectError, memberUrl } from '../cluster'
import { VolumeKeys, parseKeyFile, serializeKeyFile } from '../crypto'
import { ServerError } from '../protocol'
import {
  BackgroundRepairOptions, DegradedTracker, DiskCache, RepairQueue, Volume, VolumeOptions, VolumeStore, NoVolumeError, WrongPasswordError,
  fetchKeyFiles, readMembership, unlock, unlockAny,
} from '../volume'
import { ClientConfig, configPath, keyFilePath, loadConfig, saveConfig, writePrivateFile } from './config'
import { UsageError } from './errors'
import { diskCacheDir, repairQueueFile } from './state-dir'
import { formatSize } from '../protocol'

export interface Session {
  configFile: string
  config: ClientConfig
  cluster: Cluster
  keys: VolumeKeys
}

export async function connect(config: ClientConfig, password: string, log?: (line: string) => void, longLived = false): Promise<Cluster> {
  const knownIds: Record<string, string> = {}
  for (const s of config.servers) if (s.id) knownIds[s.url] = s.id
  try {
    return await Cluster.connect({
      servers: config.servers.map((s) => s.url),
      user: config.user,
      password,
      replicas: config.replicas,
      writeQuorum: config.writeQuorum,
      timeoutMs: config.timeoutMs,
      ca: config.ca ? await readFile(config.ca) : undefined,
      knownIds,
      longLived,
      log,
    })
  } catch (err) {
    throw explainAuth(err, config.user, config.ca)
  }
}

/**
 * Applies the volume's server list (when it has one) to the cluster and keeps the config's copy of
 * it current, so the next start knows every server. True when the membership changed.
 */
export async function followMembership(session: Session, log?: (line: string) => void): Promise<boolean> {
  const m = await readMembership(session.cluster, session.keys)
  if (!m) return false
  const current = session.cluster.members()
  const same = m.servers.length === current.length && m.servers.every((s) => current.some((c) => c.url === memberUrl(s.url) && c.draining === !!s.draining))
  if (same) return false
  await session.cluster.setMembers(m.servers)
  session.config.servers = m.servers.map((s) => ({ url: s.url, id: s.id }))
  await saveConfig(session.configFile, session.config).catch((err: Error) => log?.(`could not update ${session.configFile}: ${err.message}`))
  log?.(`servers of the volume (epoch ${m.epoch}): ${m.servers.map((s) => `${s.url}${s.draining ? ' (draining)' : ''}`).join(', ')}`)
  return true
}

/** Connects and unlocks the volume named by the config. */
export async function openSession(opts: { config?: string; password: string; log?: (line: string) => void; longLived?: boolean }): Promise<Session> {
  const configFile = configPath(opts.config)
  const config = await loadConfig(configFile)
  const local = keyFilePath(configFile)
  // The local copy's scrypt runs beside the logins' (both on the thread pool, ~0.13 s less per
  // command); its outcome is looked at only once the servers have accepted us.
  const localKeys = readFile(local).then((text) => unlock(parseKeyFile(text), opts.password))
  localKeys.catch(() => undefined)
  const cluster = await connect(config, opts.password, opts.log, opts.longLived)
  try {
    let keys: VolumeKeys
    try {
      keys = await localKeys
    } catch (err) {
      // No local copy, or one wrapped for another password (edfs passwd on another machine, or
      // interrupted here): the servers' copies decide, and the one that opens becomes the local one.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' && !(err instanceof WrongPasswordError)) throw err
      const found = await unlockAny(await fetchKeyFiles(cluster), opts.password).catch((e: unknown) => {
        throw e instanceof WrongPasswordError || e instanceof NoVolumeError ? new UsageError(e.message) : e
      })
      await writePrivateFile(local, serializeKeyFile(found.keyFile).toString('utf8'))
      keys = found.keys
    }
    const session = { configFile, config, cluster, keys }
    await followMembership(session, opts.log)
    return session
  } catch (err) {
    cluster.close()
    throw err
  }
}

export type OpenVolume = Volume & { session: Session }

/** Background repair of a writer (the mount daemon): its queue lives in this machine's state directory. */
export interface RepairSettings {
  passIntervalMs: number
  bytesPerSecond: number
}

/** Opens the volume for the mount daemon and the file commands. `close()` also closes the cluster. */
export async function openVolume(
  opts: {
    config?: string; readOnly: boolean; cacheBytes?: number; password: string; repair?: RepairSettings
    /** A long-running process (the mount daemon): ClusterOptions.longLived. */
    longLived?: boolean
    /** Look for a changed server list this often (the mount daemon); a change starts a rebalance. */
    followMembershipMs?: number
    /** Keep sealed chunks on this machine's disk (dir default: diskCacheDir; size default: the disk cache's). */
    disk?: { dir?: string; maxBytes?: number }
  } & Partial<Omit<VolumeOptions, 'diskCache'>>,
): Promise<OpenVolume> {
  const session = await openSession(opts)
  try {
    let store: VolumeStore = session.cluster
    let backgroundRepair: BackgroundRepairOptions | undefined
    if (opts.repair && !opts.readOnly) {
      const queue = await RepairQueue.load(repairQueueFile(session.config.volumeId), opts.log)
      store = new DegradedTracker(session.cluster, queue)
      backgroundRepair = { queue, store: session.cluster, ...opts.repair }
    }
    const diskCache = opts.disk ? await openDiskCache(opts.disk, session.config.volumeId, opts.log) : undefined
    const volume = await Volume.open(store, session.keys, { opTimeoutMs: session.config.timeoutMs, backgroundRepair, diskCache, ...opts })
    const close = volume.close.bind(volume)
    let follower: NodeJS.Timeout | null = null
    if (opts.followMembershipMs) {
      let busy = false
      follower = setInterval(() => {
        if (busy) return
        busy = true
        followMembership(session, opts.log)
          .then((changed) => changed && volume.repair?.rebalance())
          .catch((err: Error) => opts.log?.(`reading the volume's server list failed (will retry): ${err.message}`))
          .finally(() => (busy = false))
      }, opts.followMembershipMs)
      follower.unref()
    }
    return Object.assign(volume, {
      session,
      close: async () => {
        if (follower) clearInterval(follower)
        try {
          await close()
        } finally {
          session.cluster.close()
        }
      },
    })
  } catch (err) {
    session.cluster.close()
    throw err
  }
}

/**
 * The disk cache the mount asked for. A directory given with --cache-dir that cannot be made is an
 * error; the default one is a warning and no disk cache (a cache is never a reason not to mount).
 */
async function openDiskCache(want: { dir?: string; maxBytes?: number }, volumeId: string, log?: (line: string) => void): Promise<DiskCache | undefined> {
  const dir = want.dir ?? diskCacheDir(volumeId)
  try {
    const cache = await DiskCache.open(dir, want.maxBytes, log)
    log?.(`disk cache: ${dir}, up to ${formatSize(cache.maxBytes)}`)
    return cache
  } catch (err) {
    if (want.dir) throw new UsageError(`--cache-dir ${dir}: ${(err as Error).message}`)
    log?.(`warning: no disk cache (${dir}: ${(err as Error).message})`)
    return undefined
  }
}

/** TLS errors that mean: the server's certificate is not signed by a CA this client trusts. */
const UNTRUSTED_CERT = /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_GET_ISSUER_CERT|CERT_UNTRUSTED/

function explainAuth(err: unknown, user: string, ca?: string): Error {
  if (err instanceof ServerError && err.status === 401) return new UsageError(`wrong user name or password for "${user}" on ${err.server}`)
  if (err instanceof ClusterConnectError && err.failures.some((f) => UNTRUSTED_CERT.test(f.reason))) {
    const fix = ca ? `the CA in ${ca} did not sign it: give the right one with edfs init --ca FILE` : 'give the CA that signed it with edfs init --ca FILE'
    return new UsageError(`${err.message}\nthe server's TLS certificate is not trusted: ${fix}`)
  }
  if (err instanceof ClusterConnectError && err.failures.some((f) => /ERR_TLS_CERT_ALTNAME_INVALID|CERT_HAS_EXPIRED/.test(f.reason))) {
    return new UsageError(`${err.message}\nthe server's TLS certificate does not fit (wrong name, or expired): make one for the name in the URL`)
  }
  return err as Error
}
