// The one check of the replication settings: R copies of each chunk on n servers, a write done once
// W of them took it. Cluster.connect applies it to its options; `edfs init` to the user's flags
// before it asks for the password (without n: attaching may start from one server of many), and
// again once it knows how many servers the volume has.

/** Why R and W cannot work (on `servers` servers, when given), or null when they can. */
export function replicationProblem(replicas: number, writeQuorum: number, servers?: number): string | null {
  const most = servers ?? Infinity
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > most) {
    const range = servers === undefined ? 'a positive integer' : `1..${servers} (the number of servers)`
    return `replicas (R) must be ${range}, got ${replicas}`
  }
  if (!Number.isInteger(writeQuorum) || writeQuorum < 1 || writeQuorum > replicas) {
    return `writeQuorum (W) must be 1..${replicas} (R), got ${writeQuorum}`
  }
  return null
}
