// Package logsvc is Akutan's replicated log: one totally ordered sequence of
// Akutan entries (encoded entrypb.Envelope messages) at dense indexes from 1,
// identical on every replica, replicated by hashicorp/raft.
//
// The Akutan log is not Raft's log. Raft's log carries commands; an append
// command carries a whole batch of Akutan entries (group commit). Raft
// compacts its own log after snapshots, while the Akutan log keeps every
// committed entry, in the entry store, until DiscardPrefix.
//
// The rules of the apply loop (fsm.go):
//
//  1. The FSM is the only writer of the entry store. It applies each batch
//     of committed Raft entries in one store batch, together with the Raft
//     index it reached, so the store is always as of a whole Raft entry.
//  2. An append command of n entries gets indexes Last+1 … Last+n. Every
//     replica applies the same commands in the same order, so every replica
//     assigns the same indexes.
//  3. Raft entries at or below the store's applied Raft index were applied
//     before a restart and are skipped: nothing is applied twice. Raft is
//     started without restoring its snapshot (the store is durable); if the
//     store is behind the newest local snapshot it is restored from it first.
//  4. An entry whose version, or whose version change, is above
//     MaxSupportedVersion halts the replica at that Raft entry. A halted
//     replica applies nothing more and refuses snapshots, so Raft keeps the
//     entries it has not applied; once upgraded it resumes at the same entry.
//     No entry is ever skipped. Its RPCs and Info report the error.
//  5. The log version starts at 1 and only goes up, by a version change
//     entry appended alone. An entry's version is at most the log's
//     version in force (older versions stay valid). Before the leader
//     proposes a change to version N it asks every member of the Raft
//     configuration (voters and nonvoters: all apply the log) for its
//     MaxSupportedVersion, and refuses the change with ErrVersionRefused
//     (FAILED_PRECONDITION), naming each member that supports less or could
//     not be asked, unless all support N. Rule 4 still covers a replica
//     rolled back, or added, after the change. The change cannot be undone.
//  6. DiscardPrefix(i) is a Raft command, so every replica discards at the
//     same point; the FSM refuses it unless the replicated archive watermark
//     is at least i-1. Only an Archiver advances the watermark, after it
//     durably stored the entries.
//  7. A snapshot holds the metadata and every retained entry, so a replica
//     that installs it serves Read for every retained index.
//  8. The archive loop runs on the leader only and is the only caller of
//     the Archiver: it hands over entries from the watermark on, in order,
//     and replicates the index the archiver reports durable. With an
//     ArchiveStore, SegmentArchiver cuts segments by size and age, uploads
//     each, adds it to the log catalog, and only then reports it. ArchiveNow
//     makes the loop hand over everything committed and flush.
//  9. Readers below the first retained index read the archive
//     (logclient.Reader.UseArchive) up to that index, and the log from it.
//  10. RestoreDataDir builds a one-voter replica whose log starts after the
//     restored index, with the watermark at that index: the archive serves
//     everything below it.
//
// Append is acknowledged only after Raft commits the command and the leader
// applies it. A follower forwards writes to the leader over a connection it
// knows is ready, and reports the leader otherwise. Errors are the logerr
// kinds, mapped to gRPC status in one place (logerr.ToStatus).
package logsvc
