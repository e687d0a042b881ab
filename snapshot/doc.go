// Package snapshot is Akutan's object-storage layer: the bucket is the
// contract between the servers that write history (the log's archiver and the
// views' checkpointers) and the tools that boot and restore from it.
//
// # Stores
//
// Store is a small object-store interface: put, conditional put, ranged get,
// head, delete, and list (for garbage collection and repair only). DirStore
// keeps objects in a local directory (the embedded default); S3Store speaks
// S3 through aws-sdk-go-v2 (MinIO locally). Prefixed keeps a cluster's keys
// under its own prefix in a shared bucket. Both stores pass one conformance
// suite.
//
// # Bucket layout (format 1)
//
//	log/catalog.json                    log catalog
//	log/segments/<first>-<last>.seg     log segment, indexes zero-padded to 20 digits
//	checkpoints/catalog.json            checkpoint catalog
//	checkpoints/<space>/<start>-<end>/<index>-<nonce>/manifest.json
//	checkpoints/<space>/<start>-<end>/<index>-<nonce>/<file>
//
// Range bounds are 16 hex digits (end 0000000000000000 means 2^64); index is
// 20 decimal digits; nonce is 8 hex digits, random per checkpoint.
//
// # Documents
//
// Catalogs and manifests are JSON followed by one line "crc32c:xxxxxxxx\n"
// holding the CRC-32C (Castagnoli) of the JSON bytes. Each carries "format";
// a reader refuses a format it does not know. Catalogs are rewritten only
// with conditional puts (If-Match on the ETag read, or If-None-Match for the
// first version), in a read-modify-write loop, so concurrent writers never
// lose each other's changes and a reader never sees a torn catalog.
//
// The log catalog lists segments in index order, consecutive and without
// gaps, from the oldest retained one; a reader finds the segment holding any
// index by binary search, without listing the bucket. The checkpoint catalog
// lists every checkpoint that exists: space, range, index, manifest key.
//
// # Log segments (format 1)
//
//	magic      "AKUTSEG" + format byte (1)
//	first      uint64 big-endian: index of the first entry
//	last       uint64 big-endian: index of the last entry
//	raw length uint64 big-endian: length of the uncompressed payload
//	raw crc    uint32 big-endian: CRC-32C of the uncompressed payload
//	payload    one zstd frame; uncompressed, for each entry in index order:
//	           uvarint(length) ‖ entry (an encoded entrypb.Envelope)
//	trailer    uint32 big-endian: CRC-32C of every byte before it
//
// Segments are immutable. Two archivers that write the same range write the
// same bytes, so a retried upload is harmless.
//
// # Checkpoints (format 1)
//
// A view writes its data files first, then the manifest (with If-None-Match),
// then adds the checkpoint to the catalog. Only a catalog entry makes a
// checkpoint exist; anything else under checkpoints/ is a torn upload that
// garbage collection removes after a grace period. The manifest records the
// space, range, index, log version, and each file's kind, hash range, size,
// CRC-32C and entry count; the meaning of kinds is viewsvc's.
//
// Every byte read back is checked against its checksum; a mismatch is
// ErrCorrupt, and a corrupt object is reported, never used.
package snapshot
