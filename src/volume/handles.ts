// Handle numbers for open files and directory streams: fuse-native passes them as int32 and 0 means
// "none", so they run 1..2^31-1, handed out in turn and wrapping around past the ones in use.

export const MAX_HANDLE = 0x7fffffff

/** Numbered values; `add` gives each the next free number. */
export class HandleTable<T> extends Map<number, T> {
  private next = 1

  add(value: T): number {
    while (this.has(this.next)) this.next = this.next >= MAX_HANDLE ? 1 : this.next + 1
    const fh = this.next
    this.next = fh >= MAX_HANDLE ? 1 : fh + 1
    this.set(fh, value)
    return fh
  }
}
