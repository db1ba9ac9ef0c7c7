// src/crypto: key file, sub-keys, chunk and metadata sealing (a leaf: imports nothing from the project).
// docs/crypto.md describes every format and the threat model.
export { IntegrityError, WrongPassphraseError, KeyFileError } from './errors'
export {
  KeyFile, ScryptParams, DEFAULT_SCRYPT, MIN_SCRYPT, MAX_SCRYPT, KEYFILE_FORMAT, KEYFILE_VERSION,
  createKeyFile, unwrapMasterKey, rewrapKeyFile, parseKeyFile, serializeKeyFile, validateKeyFile, checkScryptParams,
} from './keyfile'
export { VolumeKeys, SUBKEY_INFO, deriveVolumeKeys, recordName, rootInodeId } from './subkeys'
export {
  BLOCK_SIZE, BLOCK_OVERHEAD, SEALED_BLOCK_SIZE, CHUNK_FORMAT_VERSION, SALTED_CHUNK_FORMAT_VERSION, CHUNK_SALT_BYTES, FILE_ID_BYTES, BlockSpan,
  sealChunk, openChunk, sealedLength, plainLength, blockCount, blockSpan, openBlocks,
} from './chunk'
export { META_FORMAT_VERSION, META_OVERHEAD, sealMeta, openMeta } from './meta'
export { blobId } from './blob-id'
export { randomBuffer } from './random'
