// Package backup answers the operator's questions about the bucket: what
// is archived, which checkpoints exist, and which log indexes a whole
// cluster can be restored at (Inventory). It only reads the catalogs, never
// lists the bucket.
//
// An index N is restorable when, for each space, either the checkpoints
// with index ≤ N cover the whole hash space and the archive holds every
// entry from the oldest chosen checkpoint's index + 1 through N, or the
// archive holds every entry from 1 through N (replay from the beginning).
//
// Now is "backup now": it has every view write a checkpoint, two at a time,
// and then flushes the log's archive, so the bucket holds everything
// committed so far.
package backup
