// The volume's key file on its servers: the records that hold it (the current one, and the next one
// while `edfs passwd` changes the password), the distinct copies the servers hold, and unlocking one
// with the password. The servers can read these records before anyone knows the volume's keys:
// the key file is what the password unwraps the keys from.
import { KeyFile, VolumeKeys, WrongPassphraseError, deriveVolumeKeys, parseKeyFile, unwrapMasterKey } from '../crypto'
import type { VolumeStore } from './store'

export const KEYFILE_RECORD = 'keyfile'
/** The key file wrapped for the next password while `edfs passwd` changes it (both open the volume). */
export const KEYFILE_NEXT_RECORD = 'keyfile-next'

/** The password does not open this key file. */
export class WrongPasswordError extends Error {
  constructor() {
    super('wrong password: it does not open this volume\'s key file')
    this.name = 'WrongPasswordError'
  }
}

/** None of the servers holds a key file: no volume was made for this user there. */
export class NoVolumeError extends Error {
  constructor() {
    super('the servers hold no volume for this user: run `edfs init` first')
    this.name = 'NoVolumeError'
  }
}

/** The distinct key files the servers hold (normally one); a copy that does not parse is skipped. */
export async function fetchKeyFiles(store: Pick<VolumeStore, 'readRecordEverywhere'>): Promise<KeyFile[]> {
  const seen = new Map<string, KeyFile>()
  const copies = (await Promise.all([KEYFILE_RECORD, KEYFILE_NEXT_RECORD].map((r) => store.readRecordEverywhere(r)))).flat()
  for (const copy of copies) {
    if (!copy.value) continue
    try {
      const kf = parseKeyFile(copy.value)
      seen.set(JSON.stringify(kf), kf)
    } catch {
      // A damaged or foreign copy must not stop the others from opening the volume.
    }
  }
  return [...seen.values()]
}

export async function unlock(keyFile: KeyFile, password: string): Promise<VolumeKeys> {
  try {
    return deriveVolumeKeys(await unwrapMasterKey(keyFile, password))
  } catch (err) {
    if (err instanceof WrongPassphraseError) throw new WrongPasswordError()
    throw err
  }
}

/**
 * Opens the first key file the password unwraps: a server serving a bogus copy cannot block the
 * volume while another server holds the real one.
 */
export async function unlockAny(keyFiles: KeyFile[], password: string): Promise<{ keyFile: KeyFile; keys: VolumeKeys }> {
  let last: unknown
  for (const keyFile of keyFiles) {
    try {
      return { keyFile, keys: await unlock(keyFile, password) }
    } catch (err) {
      last = err
    }
  }
  throw last ?? new NoVolumeError()
}
