// The three ways opening something can fail. Callers tell them apart by class (instanceof), never
// by message. None of them ever carries partial plaintext.

/** Authentication failed: the bytes were changed, truncated, reordered, moved, or sealed under another key. */
export class IntegrityError extends Error {
  override name = 'IntegrityError'
}

/** The passphrase does not open the key file (or the key file's bound fields were altered). */
export class WrongPassphraseError extends Error {
  override name = 'WrongPassphraseError'
}

/** The key file is malformed, of an unknown format or version, or asks for too-weak (or absurd) KDF parameters. */
export class KeyFileError extends Error {
  override name = 'KeyFileError'
}
