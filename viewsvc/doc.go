// Package viewsvc is the DiskView: the facts of one hash range of one space,
// stored in Pebble, applied from the log, and read at a log index.
//
// # Contract
//
// A View is opened with a Config naming a space (SpaceSP or SpacePO), a
// half-open hash range [Start, End) where End == 0 stands for 2^64, and a
// data directory. The directory records its space, range and layout version
// when it is created, and Open refuses a directory made for anything else.
//
// The hash functions are fixed:
//
//	HashSP(s, p) = xxhash64(s ‖ p)              s, p as 8 bytes big-endian
//	HashPO(p, o) = xxhash64(p ‖ encode(o))      encode: internal/keys
//
// A view holds exactly the facts whose hash is in its range.
//
// # Applying the log
//
// Run streams the log from the last applied index + 1 through a LogReader and
// applies it in order:
//
//  1. Each entry is an entrypb.Envelope. An envelope with version 0, a
//     version above the log version in force, or one that does not decode
//     is malformed. A version above Config.MaxSupportedVersion, or a
//     VersionChange to one, is unsupported. An envelope without a known
//     command is an unknown command. Only an unsupported version stops the
//     view, before the entry, with an error that Status and every RPC
//     report (e.g. "unsupported log version 2 (supports up to 1)"): applying
//     past it would be a guess. Every other invalid entry — malformed, an
//     unknown command, or a transaction that fails the checks of step 3 —
//     was accepted by the log, so it must not stop the view: it is applied
//     as a no-op, counted with its index and reason in Status
//     (rejected_entries) and logged. Every such check depends only on the
//     log, never on the view's range, so all views stop at, or reject, the
//     same entries.
//  2. Ping changes nothing. VersionChange must raise the log version.
//  3. A Transaction is checked whole, then applied at its own index: first
//     its deletes in order, then its inserts in order. New node k gets id
//     index<<20 | k and insert i gets fact id index<<20 | (new_nodes+1+i).
//     Every id it names (node or fact) must come from an earlier index, that
//     is id>>20 < index, and must not be 0; a new_node reference must be in
//     1..new_nodes; objects must be set and valid (timestamps: nanos in
//     [0, 1e9), a known precision). Otherwise the entry is malformed.
//     An insert of a fact that is already live changes nothing (the fact
//     keeps its id and index). A delete, by fact id or by (s, p, o), writes
//     a tombstone if the fact is live and changes nothing otherwise. So a
//     transaction that deletes and inserts the same fact replaces it with a
//     new id.
//  4. A Transaction with needs_decision is held. The first Decision for its
//     index applies it at the decision's index (commit) or drops it
//     (abort); its ids still come from its own index. Later decisions, and
//     decisions for an index that holds no pending transaction, change
//     nothing. A decision must name an earlier index.
//
// Writes become visible at the index that applies them, and a read at index
// N sees exactly the writes at indexes <= N. A decided transaction becomes
// visible at the decision, not at its own index, because a read at an index
// between the two may already have been answered: making the writes visible
// retroactively would change that answer, and reads must never change.
//
// Many entries go into one Pebble batch together with the last applied index
// and the log version, so a restart resumes exactly after the last committed
// entry and never applies one twice. Entries are never split across batches.
// A view keeps no write-ahead log: its state is durable when Pebble flushes
// a memtable, batches reach the memtable atomically, and flushes keep their
// order, so a crash can only lose a suffix of batches, which Run applies again
// from the log. Close flushes, so a clean restart re-applies nothing.
//
// # Reading
//
// Lookup (and the gRPC Server) answers a batch of lookups at an index after
// waiting, up to the context's deadline, for the view to apply it. A lookup
// for the wrong space, outside the range, or malformed fails the whole batch
// before anything is read. Facts come in lookup order and, within a lookup,
// in key order. LookupFrom resumes an answer after a Cursor (a lookup and a
// fact's triple: the scan restarts at the next key after that fact's), and
// the server ends a stream after a request's limit of facts; the API pages
// through large answers with the two. Digest summarises the visible facts at
// an index so that views can be compared.
//
// # Checkpoints and booting from the bucket
//
// With Config.Store set, a view writes checkpoints (CheckpointNow, or the
// background checkpointer per CheckpointInterval and CheckpointEntries): its
// state at its applied index N, as SST files of kinds KindFacts,
// KindOrdered, KindRecords and KindPending, uploaded first, then a
// snapshot.Manifest, then a catalog entry. A failing store never stops
// applying or serving; Status reports the last checkpoint and the last
// failure.
//
// A view opened with a Store on a missing or empty data directory boots from
// the bucket when Run starts, and only then:
//
//  1. It chooses the newest checkpoints covering its range (at most StopAt,
//     if set); they may come from another partitioning.
//  2. It downloads the files it needs and checks each one's size and CRC-32C;
//     a corrupt checkpoint (bad checksum, missing file, bad manifest) is
//     logged, never ingested, and the choice is made again without it, down
//     to replaying the log from index 1.
//  3. It ingests them at Nmin, the smallest chosen index, keeping only its
//     range and the versions up to Nmin.
//  4. It records Nmin as applied and replays the log from Nmin+1, reporting
//     BOOTING while it downloads and CATCHING_UP while it replays.
//
// A directory with data resumes from it and never boots; Restore refuses it
// with ErrNotEmpty. A boot interrupted by a crash starts again from nothing.
// With StopAt set the view applies exactly to StopAt and stays there.
//
// Errors are the package's Err… values, wrapped with context; ToStatus maps
// them to gRPC codes.
package viewsvc
