// Shared bits of the cluster integration tests.
import { createHash, randomBytes } from 'node:crypto'
import { Cluster, ClusterOptions } from '../../src/cluster'
import { ServerClient } from '../../src/cluster/server-client'
import type { Test } from 'tap'
import { RunningServer, TEST_USER } from '../helpers/servers'
import { waitFor } from '../helpers/wait'

export const MiB = 1024 * 1024
export const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

export interface Blob {
  id: string
  data: Buffer
}

export function makeBlobs(n: number, size: number): Blob[] {
  return Array.from({ length: n }, () => {
    const data = randomBytes(size)
    return { id: sha(data), data }
  })
}

export async function connect(servers: RunningServer[], opts: Partial<ClusterOptions> = {}, logs?: string[]): Promise<Cluster> {
  return Cluster.connect({
    servers: servers.map((s) => s.url),
    user: TEST_USER.name,
    password: TEST_USER.password,
    log: (line) => logs?.push(line),
    probeBackoffMs: { baseMs: 100, maxMs: 1000 },
    ...opts,
  })
}

export { blobFile as blobPath } from '../helpers/corrupt'

/** Sum of bytesServed over the servers that answer (a dead one served nothing since). */
export async function bytesServed(servers: RunningServer[]): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  await Promise.all(
    servers.map(async (s) => {
      const c = new ServerClient({ url: s.url, user: TEST_USER.name, password: TEST_USER.password, timeoutMs: 2000 })
      try {
        out.set(s.id, (await c.stats()).bytesServed)
      } catch {
        /* down */
      } finally {
        c.close()
      }
    }),
  )
  return out
}

export function servedSince(before: Map<string, number>, after: Map<string, number>): number {
  let sum = 0
  for (const [id, n] of after) sum += n - (before.get(id) ?? 0)
  return sum
}

/** Waits until `cond` holds, polling; fails after `ms`. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  if (!(await waitFor(ms, cond, 50))) throw new Error(`timed out waiting for ${what}`)
}

/** Puts blobs with at most `concurrency` in flight; returns the put results in order. */
export async function putAll(cluster: Cluster, blobs: Blob[], concurrency = 4, afterEach?: (done: number) => void | Promise<void>) {
  const results: { servers: string[]; degraded: boolean }[] = new Array(blobs.length)
  let next = 0
  let done = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < blobs.length) {
        const i = next++
        results[i] = await cluster.put(blobs[i]!.id, blobs[i]!.data)
        done++
        await afterEach?.(done)
      }
    }),
  )
  return results
}

/** Restarts a server and waits until the cluster uses it again. */
export async function restartAndWait(cluster: Cluster, s: RunningServer): Promise<void> {
  await s.restart()
  await until(() => cluster.members().find((m) => m.id === s.id)?.up === true, 15_000, `server ${s.id} to be back`)
}

/** Every blob came back with its exact bytes. */
export function intact(t: Test, blobs: Blob[], got: Map<string, Buffer>, what: string): void {
  const bad = blobs.filter((b) => !got.get(b.id)?.equals(b.data))
  t.equal(bad.length, 0, `${what}: all ${blobs.length} blobs intact`)
}
