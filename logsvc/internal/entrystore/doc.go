// Package entrystore is the durable state of one log replica: the committed
// Akutan entries from the first retained index to the last applied one, and
// the replicated metadata that travels with them (archive watermark, log
// version, member addresses, and the Raft index applied last).
//
// Contract:
//  1. Entries are dense: every index in [First, Last] is present.
//  2. A Batch commits atomically with the metadata, so after a crash the
//     store is exactly as of some committed Batch. Batches are not fsynced:
//     a process crash loses nothing, and after a power loss the store may
//     be as of an earlier batch, which the Raft log, being durable, replays.
//  3. Readers see only committed batches; Changed is closed after each one.
//  4. A snapshot is a self-checking stream (checksummed, with a trailer) of
//     the metadata and every retained entry; Restore replaces the whole
//     state and is crash-safe: an interrupted restore leaves the store
//     marked empty (RaftApplied 0), never half old and half new.
//
// The store has one writer (the Raft FSM) and any number of readers.
package entrystore
