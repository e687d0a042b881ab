// Package snapshot is Akutan's object-storage layer: the bucket is the
// contract between the servers that write history (the log's archiver and the
// views' checkpointers) and the tools that boot and restore from it.
//
// # Stores
//
// Store is a small object-store interface: put, conditional put, ranged get,
// head, delete, and list (for garbage collection and repair only). DirStore
// keeps objects in a local directory (the embedded default); s3store.Store,
// in its own package so that only the binaries that open a bucket link the
// AWS SDK, speaks S3 through aws-sdk-go-v2 (MinIO locally). OpenStore opens
// either from a URL; importing package s3store registers s3://. Prefixed keeps a cluster's keys
// under its own prefix in a shared bucket. Both stores pass one conformance
// suite (conformance_test.go), the S3 run against a real MinIO server that
// package miniotest starts.
//
// The S3 store maps 404 / NoSuchKey to ErrNotFound (but never a missing bucket:
// that would make a misconfigured store look empty), and 412 and 409
// ConditionalRequestConflict to ErrPrecondition. Conditional puts send
// If-None-Match: * or If-Match: <etag>. A Put of more than PartSize bytes
// (16 MiB by default) is a multipart upload streamed part by part, aborted
// on failure; a bucket lifecycle rule should abort incomplete uploads of
// processes that died. Uploads carry a CRC-32C the service checks. Every
// request is retried by the SDK's standard retryer (jittered exponential
// backoff, no client-side retry quota). Because a retried conditional put
// whose first try landed reports ErrPrecondition, catalog update functions
// must notice that their change is already there (see UpdateLogCatalog).
//
// OpenStore names a store by URL:
//
//	/abs/dir or file:///abs/dir
//	s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1&path_style=true
//
// with the further s3 options sse (AES256 or aws:kms), kms_key_id and
// max_attempts. S3 credentials come from the standard chain
// (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, shared files, roles), never
// from the URL.
//
// # Bucket layout (format 1)
//
//	akutan-bucket.json                  marker: the store was initialised (format, time)
//	akutan-clock                        written to read the store's clock (StoreNow)
//	clusters.json                       cluster registry: the clusters and which are critical
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
// The marker (MarkerKey) is written by InitBucket, from `akutan backup init`
// or the first log archiver on a store, after both catalogs, and never
// deleted. It tells "never created" from "lost": in a store without it an
// absent catalog is empty; in one with it, loading or updating an absent
// catalog fails with ErrCatalogMissing, and the archiver, retention and
// garbage collection stop and say so rather than start a new catalog over
// the old objects. InitBucket also refuses a store with segments but no log
// catalog (a store from before markers that lost its catalog).
//
// The log catalog lists segments in index order, consecutive and without
// gaps, from the oldest retained one; a reader finds the segment holding any
// index by binary search, without listing the bucket. The checkpoint catalog
// lists every checkpoint that exists: space, range, index, manifest key.
//
// Both catalogs also carry "retired": {key, at, bytes} entries that
// retention took out of the catalog at time at. The log catalog's are
// segment keys; the checkpoint catalog's are manifest keys, standing for
// the manifest and its data files. Their objects stay for a grace period,
// so that a boot or restore that read an older catalog can finish, and are
// then deleted, the entry last.
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
// Segments are immutable and uploaded create-only (If-None-Match). Two
// archivers of one history that write the same range write the same bytes,
// so a retried upload finds its own object and goes on; a key holding other
// bytes belongs to another history, and the archiver stops.
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
//
// # Retention and garbage collection
//
// Every age is judged by the store's clock (StoreNow: the modification time
// the store gives an object written now) against the times it stamped on
// objects and retirements, never by the local clock. The grace period is at
// least MinGrace (15 minutes). A checkpoint counts, for retention and for
// truncation, only once CheckCheckpoint finds it whole: its manifest reads
// back and matches the catalog, and every file is there with its size
// (HEAD); its files' CRC-32C too where asked (truncation checks those of
// the checkpoints its plan relies on, once each).
//
// ApplyRetention runs in steady state and never lists:
//
//  1. Keep, at every point of each (cluster, space)'s hash space, the K
//     newest whole checkpoints covering it (with an unchanged
//     partitioning: the newest K of each range), and any newer that are
//     not whole; retire the others.
//  2. Keep the log archive back to the oldest retained checkpoint: retire
//     the segments that end below the least retained index. Keep it all if
//     there is no whole checkpoint, or if a cluster's retained whole
//     checkpoints do not cover a required space (RetentionPolicy.Spaces)
//     over the whole hash range. The newest segment always stays, so the
//     catalog still says how far the archive reaches.
//  3. Delete the objects of entries retired more than the grace period ago
//     (a checkpoint's files before its manifest), then drop the entries.
//
// Each kind is deleted only under its own prefix: a retired segment only
// under log/segments/, a checkpoint's objects only inside its own
// directory. A retired entry or manifest that names any other key is
// corrupt: it is reported (GarbageReport.Corrupt, and an error wrapping
// ErrCorrupt) and nothing it names is deleted.
//
// CollectGarbage is the only code that lists. It does step 3, then deletes
// objects under log/segments/ and in checkpoint directories that no
// catalog references, listed or retired, directly or through a manifest,
// and that are older than the grace period: torn uploads. It collects
// nothing of a kind whose catalog is absent while objects of it exist. A checkpoint directory goes whole,
// and only once its newest object is older than the grace period, so an
// upload in progress is never touched.
//
// Verify reads everything the catalogs list, streaming: each segment's
// size, CRC-32C, header and entries, each manifest against the catalog,
// and each data file's size and CRC-32C. It reports every problem.
package snapshot
