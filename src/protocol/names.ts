// Validation of every identifier that arrives from the network, before it touches a path on disk.

/** A blob id: the SHA-256 of the stored bytes, 64 lowercase hex digits. */
export const BLOB_ID = /^[0-9a-f]{64}$/
/** A record name: lowercase letters, digits, dot, dash, underscore; starts with a letter or digit. */
export const RECORD_NAME = /^[a-z0-9][a-z0-9._-]{0,127}$/
/** A user name, as given to `edfs server useradd`. */
export const USER_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/

export const isBlobId = (s: string): boolean => BLOB_ID.test(s)
export const isRecordName = (s: string): boolean => RECORD_NAME.test(s)
export const isUserName = (s: string): boolean => USER_NAME.test(s)
