// Small file helpers for the atomic write discipline: write a temp file, fsync it, rename it into
// place, fsync the directory. A reader sees the old file or the new one, never a torn one.
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { open, rename, rm } from 'node:fs/promises'
import path from 'node:path'

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/** Writes every byte of `chunks` at the file's current position. */
export async function writeAll(fh: import('node:fs/promises').FileHandle, chunks: Buffer[]): Promise<void> {
  let total = 0
  for (const c of chunks) total += c.length
  const { bytesWritten } = await fh.writev(chunks)
  if (bytesWritten >= total) return
  const rest = Buffer.concat(chunks).subarray(bytesWritten)
  for (let off = 0; off < rest.length; ) off += (await fh.write(rest, off)).bytesWritten
}

/** Atomically replaces `finalPath` with `data` (the temp file must be on the same file system). */
export async function writeFileAtomic(tmpPath: string, finalPath: string, data: Buffer[], mode = 0o644): Promise<void> {
  let done = false
  try {
    const fh = await open(tmpPath, 'wx', mode)
    try {
      await writeAll(fh, data)
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmpPath, finalPath)
    done = true
    await fsyncDir(path.dirname(finalPath))
  } finally {
    if (!done) await rm(tmpPath, { force: true })
  }
}

/** The same, synchronously: for start-up and the CLI only. */
export function writeFileAtomicSync(finalPath: string, data: Buffer | string, mode = 0o644): void {
  const tmpPath = `${finalPath}.tmp-${process.pid}-${Date.now()}`
  let done = false
  try {
    const fd = openSync(tmpPath, 'wx', mode)
    try {
      const buf = typeof data === 'string' ? Buffer.from(data) : data
      for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmpPath, finalPath)
    done = true
    const dfd = openSync(path.dirname(finalPath), 'r')
    try {
      fsyncSync(dfd)
    } finally {
      closeSync(dfd)
    }
  } finally {
    if (!done) {
      try {
        unlinkSync(tmpPath)
      } catch {
        /* never created */
      }
    }
  }
}
