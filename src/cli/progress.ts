// A one-line progress bar on stderr (bytes, rate, ETA, files), drawn only on a terminal and never
// with --quiet. Redrawn at most a few times a second; erased at the end.
import { formatSize } from '../protocol'

export class Progress {
  private done = 0
  private filesDone = 0
  private readonly started = Date.now()
  private timer: NodeJS.Timeout | null = null
  private readonly enabled: boolean

  constructor(private readonly label: string, private readonly totalBytes: number, private readonly totalFiles: number, quiet = false) {
    this.enabled = !quiet && process.stderr.isTTY === true
    if (this.enabled) {
      this.timer = setInterval(() => this.draw(), 200)
      this.timer.unref()
    }
  }

  add(bytes: number): void {
    this.done += bytes
  }

  fileDone(): void {
    this.filesDone++
  }

  /** Erases the bar (the caller prints its own summary, if any). */
  finish(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    if (this.enabled) process.stderr.write('\r\x1b[2K')
  }

  get bytes(): number {
    return this.done
  }

  get seconds(): number {
    return (Date.now() - this.started) / 1000
  }

  private draw(): void {
    const secs = Math.max(this.seconds, 0.001)
    const rate = this.done / secs
    const frac = this.totalBytes > 0 ? Math.min(1, this.done / this.totalBytes) : this.totalFiles > 0 ? this.filesDone / this.totalFiles : 1
    const width = 24
    const filled = Math.round(frac * width)
    const bar = `${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? (filled === width ? '=' : '>') : ''}${' '.repeat(width - filled)}`
    const eta = rate > 0 && this.totalBytes > this.done ? formatDuration((this.totalBytes - this.done) / rate) : '--:--'
    const files = this.totalFiles > 1 ? `  ${this.filesDone}/${this.totalFiles} files` : ''
    const line =
      `${this.label} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}%  ${formatSize(this.done)} / ${formatSize(this.totalBytes)}` +
      `  ${formatSize(Math.round(rate))}/s  ETA ${eta}${files}`
    const cols = process.stderr.columns || 100
    process.stderr.write(`\r\x1b[2K${line.slice(0, cols - 1)}`)
  }
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds))
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const r = s % 60
  const mm = String(m).padStart(h > 0 ? 2 : 1, '0')
  return `${h > 0 ? `${h}:` : ''}${mm}:${String(r).padStart(2, '0')}`
}

/** "12.0 MiB in 1.3 s (9.2 MiB/s)" */
export function summary(bytes: number, seconds: number): string {
  const rate = seconds > 0 ? bytes / seconds : 0
  return `${formatSize(bytes)} in ${seconds.toFixed(1)} s (${formatSize(Math.round(rate))}/s)`
}
