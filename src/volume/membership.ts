// The volume's server list, sealed like the head and kept on every member: clients follow it
// instead of each keeping its own list, so adding or removing a server is one change that every
// mount and command picks up. Each change bumps the epoch; a reader takes the highest epoch it can
// open (a server that was down during a change still holds the older list).
import { VolumeKeys, recordName } from '../crypto'
import { ReplicatedRecord } from './replicated-record'
import { VolumeStore } from './store'

export const MEMBERSHIP_FORMAT = 'edfs-members'
export const MEMBERSHIP_VERSION = 1

export interface MemberEntry {
  url: string
  /** The server's id (it ranks by it, also while down). */
  id: string
  /** Being removed: its blobs move to their other homes, then it leaves the list. */
  draining?: boolean
}

export interface MembershipValue {
  format: typeof MEMBERSHIP_FORMAT
  version: number
  epoch: number
  servers: MemberEntry[]
}

function record(store: VolumeStore, keys: VolumeKeys): ReplicatedRecord<MembershipValue> {
  // On every member: a client that knows any one server finds the whole list.
  return new ReplicatedRecord<MembershipValue>(store, recordName(keys.names, 'members'), keys.metadata, store.members().length)
}

/** The newest membership the live servers hold; null on a volume that never had one (its config's list rules). */
export async function readMembership(store: VolumeStore, keys: VolumeKeys): Promise<MembershipValue | null> {
  let best: MembershipValue | null = null
  for (const copy of await record(store, keys).readAll()) {
    const v = copy.value
    if (!v || v.format !== MEMBERSHIP_FORMAT || !Array.isArray(v.servers)) continue
    if (v.version > MEMBERSHIP_VERSION) throw new Error(`the volume's server list has format version ${v.version}; this edfs reads up to ${MEMBERSHIP_VERSION} (upgrade edfs)`)
    if (!best || v.epoch > best.epoch) best = v
  }
  return best
}

/**
 * Writes the next membership (epoch = previous + 1) on every live member, `store` already holding
 * the servers of `servers` (so the new ones receive it too). Refused if someone else wrote a newer
 * epoch meanwhile.
 */
export async function writeMembership(store: VolumeStore, keys: VolumeKeys, previousEpoch: number, servers: MemberEntry[]): Promise<MembershipValue> {
  const value: MembershipValue = { format: MEMBERSHIP_FORMAT, version: MEMBERSHIP_VERSION, epoch: previousEpoch + 1, servers }
  await record(store, keys).write(value, (current) => !current || current.epoch < value.epoch)
  return value
}
