// `edfs servers [add URL | remove URL]`: the volume's server list. It is sealed on the servers
// (src/volume/membership.ts), so every client and mount follows a change. Adding a server moves the
// blobs whose rendezvous home now includes it (about R/N of them); removing one first drains it:
// each of its blobs is copied to its new home and only then deleted there, so no blob is ever
// below R copies. Both run beside a mount (no lease); the mount daemon follows within seconds.
import { Command } from 'commander'
import { MemberStatus, memberUrl } from '../../cluster'
import { memberArg } from '../config'
import { KEYFILE_RECORD, MemberEntry, fsckVolume, readMembership, writeMembership } from '../../volume'
import { UsageError } from '../errors'
import { CommonOptions, warn, withCommonOptions, withVolume, writeStdout } from '../file-commands'
import { formatSize } from '../../protocol'
import { OpenVolume } from '../volume-open'
import { setTimeout as sleep } from 'node:timers/promises'

/** A mount daemon looks for a changed server list this often (mount.ts); a drain waits it out. */
const DAEMON_FOLLOW_MS = 5000
const DRAIN_ROUNDS = 20

export function registerServers(program: Command): void {
  const servers = withCommonOptions(
    program.command('servers').description('list the volume\'s storage servers; add or remove one (data moves, copies stay at R)'),
  )
    .addHelpText('after', `
The server list belongs to the volume: every client and mount follows it (a client needs only
one reachable server in its config). A server being removed is listed as draining until its
blobs have moved.

Examples:
  edfs servers
  edfs servers add http://10.0.0.5:7001      # the user must exist there with the same password
  edfs servers remove http://10.0.0.2:7001   # afterwards its data directory can be wiped`)
    .action((opts: CommonOptions) => list(opts))

  withCommonOptions(servers.command('add').description('add a server to the volume and move to it the blobs it is now home to').argument('<url>'))
    .action((url: string, _o: CommonOptions, cmd: Command) => add(url, cmd.optsWithGlobals<CommonOptions>()))
  withCommonOptions(servers.command('remove').description('move every blob off a server, then remove it from the volume').argument('<url>'))
    .action((url: string, _o: CommonOptions, cmd: Command) => remove(url, cmd.optsWithGlobals<CommonOptions>()))
}


/** The current list: the volume's record, or (a volume that never changed servers) the config's. */
async function current(volume: OpenVolume): Promise<{ epoch: number; servers: MemberEntry[] }> {
  const m = await readMembership(volume.session.cluster, volume.session.keys)
  if (m) return m
  const members = volume.session.cluster.members()
  const unknown = members.filter((s) => !s.id)
  if (unknown.length) throw new UsageError(`server ${unknown[0]!.url} never answered, so its id is unknown: bring it up first`)
  return { epoch: 0, servers: members.map((s) => ({ url: s.url, id: s.id! })) }
}

function row(s: MemberStatus): string {
  return `  ${s.up ? 'up  ' : 'DOWN'}  ${s.url}  ${(s.id ?? '-').slice(0, 12)}${s.draining ? '  draining' : ''}`
}

async function list(opts: CommonOptions): Promise<void> {
  await withVolume(opts, true, async (volume) => {
    const m = await readMembership(volume.session.cluster, volume.session.keys)
    const lines = [m ? `servers of the volume (epoch ${m.epoch}):` : 'servers (from the config; the volume has no list of its own until one is added or removed):']
    for (const s of volume.session.cluster.members()) lines.push(row(s))
    await writeStdout(`${lines.join('\n')}\n`)
  })
}

/** Moves every blob to its home under the current membership; returns what it did. */
async function rebalance(volume: OpenVolume, what: string): Promise<{ blobs: number; bytes: number; trimmed: number; failed: number }> {
  const tty = process.stderr.isTTY === true
  const t0 = Date.now()
  const r = await fsckVolume(volume, volume.session.cluster, {
    repair: true, log: warn,
    onProgress: tty ? (phase, done, total) => process.stderr.write(`\r\x1b[2K${what}: ${phase} ${done} of ${total}`) : undefined,
  })
  if (tty) process.stderr.write('\r\x1b[2K')
  const secs = Math.max(0.001, (Date.now() - t0) / 1000)
  warn(`edfs: ${what}: ${r.repaired} blobs moved, ${formatSize(r.copiedBytes)} copied (${formatSize(r.copiedBytes / secs)}/s), ${r.trimmed} old copies removed`)
  if (r.missing.length) warn(`edfs: warning: ${r.missing.length} blobs are on no live server (see edfs fsck)`)
  return { blobs: r.repaired, bytes: r.copiedBytes, trimmed: r.trimmed, failed: r.repairFailed.length }
}

async function add(url: string, opts: CommonOptions): Promise<void> {
  const target = memberArg(url)
  await withVolume(opts, true, async (volume) => {
    const cluster = volume.session.cluster
    const m = await current(volume)
    if (m.servers.some((s) => memberUrl(s.url) === target)) throw new UsageError(`${target} is already a server of this volume`)
    // The new server must answer and know this user with this password before the list changes.
    await cluster.setMembers([...m.servers, { url: target }])
    const joined = cluster.members().find((s) => s.url === target)!
    try {
      if (!joined.up || !joined.id) throw new Error(joined.lastError ?? 'no answer')
      if (m.servers.some((s) => s.id === joined.id)) throw new Error(`it is server ${joined.id}, already in the volume under another URL`)
      await cluster.checkLogin(target)
    } catch (err) {
      await cluster.setMembers(m.servers)
      throw new UsageError(`${target} cannot join: ${(err as Error).message}`)
    }
    const servers = [...m.servers, { url: target, id: joined.id }]
    await cluster.setMembers(servers)
    // The key file too: `edfs init --servers <the new one>` must attach, never create a second volume.
    const copies = await cluster.readRecordEverywhere(KEYFILE_RECORD)
    const keyFile = copies.find((c) => c.value && c.server !== joined.id)
    if (!keyFile?.value) throw new UsageError('no server answers with the volume\'s key file')
    const there = copies.find((c) => c.server === joined.id)
    if (!there?.value) await cluster.casRecord(joined.id, KEYFILE_RECORD, there?.version ?? 0, keyFile.value)
    const written = await writeMembership(cluster, volume.session.keys, m.epoch, servers)
    warn(`edfs: ${target} (${joined.id.slice(0, 12)}) joined the volume (epoch ${written.epoch}); moving the blobs it is home to`)
    const r = await rebalance(volume, 'rebalance')
    await writeStdout(`added ${target}: ${r.blobs} blobs moved (${formatSize(r.bytes)})\n`)
    if (r.failed) throw new UsageError(`${r.failed} blobs could not be moved yet; mounts keep rebalancing, or run edfs fsck --repair`)
  })
}

async function remove(url: string, opts: CommonOptions): Promise<void> {
  const target = memberArg(url)
  await withVolume(opts, true, async (volume) => {
    const cluster = volume.session.cluster
    const m = await current(volume)
    const leaving = m.servers.find((s) => memberUrl(s.url) === target)
    if (!leaving) throw new UsageError(`${target} is not a server of this volume (see edfs servers)`)
    const staying = m.servers.filter((s) => s !== leaving && !s.draining)
    if (staying.length < volume.head.replicas) throw new UsageError(`removing ${target} would leave ${staying.length} servers for ${volume.head.replicas} copies`)
    const draining = m.servers.map((s) => (s === leaving ? { ...s, draining: true } : s))
    await cluster.setMembers(draining)
    let epoch = leaving.draining ? m.epoch : (await writeMembership(cluster, volume.session.keys, m.epoch, draining)).epoch
    warn(`edfs: ${target} is draining (epoch ${epoch}); moving its blobs to their other homes`)
    const since = Date.now()
    // Mounts may still write to it until they follow the change: drain until a check after that finds nothing left.
    for (let round = 0; ; round++) {
      await rebalance(volume, 'drain')
      const left = await blobsLeft(volume, leaving.id)
      if (left === 0 && Date.now() - since > 2 * DAEMON_FOLLOW_MS) break
      if (round >= DRAIN_ROUNDS) throw new UsageError(`${target} still holds ${left} blobs of the volume after ${round + 1} rounds; run edfs servers remove again`)
      await sleep(DAEMON_FOLLOW_MS)
    }
    const servers = m.servers.filter((s) => s !== leaving)
    epoch = (await writeMembership(cluster, volume.session.keys, epoch, servers)).epoch
    await cluster.setMembers(servers)
    await writeStdout(`removed ${target} (epoch ${epoch}): it holds none of the volume's blobs; its data directory can be wiped\n`)
  })
}

/** How many blobs the volume refers to that the server still holds. */
async function blobsLeft(volume: OpenVolume, serverId: string): Promise<number> {
  const r = await fsckVolume(volume, volume.session.cluster, {})
  const ids = [...r.misplaced, ...r.underReplicated].map((b) => b.id)
  if (ids.length === 0) return 0
  const where = await volume.session.cluster.locate(ids)
  return ids.filter((id) => where.get(id)!.includes(serverId)).length
}
