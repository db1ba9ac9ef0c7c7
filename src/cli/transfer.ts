// What put and get share: their flags, how many files are in flight, the I/O block size, and the worker pool
// that also stops starting new work on Ctrl-C.
import { mapLimit } from '../protocol'
import { CommonOptions, checkAborted } from './file-commands'

/** put's and get's flags beside the common ones. */
export interface TransferOptions extends CommonOptions {
  force?: boolean
  quiet?: boolean
}

/** Bytes read or written per call: memory stays bounded whatever the file size. */
export const IO_BLOCK = 1024 * 1024
/** Files in flight at once (small-file trees are latency-bound, not bandwidth-bound). */
export const FILES_IN_FLIGHT = 16

/** Runs `fn` over `items`, `limit` at a time (mapLimit), starting nothing once `signal` aborted. */
export async function runPool<T>(items: readonly T[], limit: number, signal: AbortSignal, fn: (item: T) => Promise<void>): Promise<void> {
  await mapLimit(items, limit, async (item) => {
    checkAborted(signal)
    await fn(item)
  })
}

/** A file type word for messages. */
export function describeStat(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean; isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }): string {
  if (st.isFile()) return 'regular file'
  if (st.isDirectory()) return 'directory'
  if (st.isSymbolicLink()) return 'symbolic link'
  if (st.isFIFO()) return 'FIFO (named pipe)'
  if (st.isSocket()) return 'socket'
  if (st.isCharacterDevice()) return 'character device'
  if (st.isBlockDevice()) return 'block device'
  return 'special file'
}
