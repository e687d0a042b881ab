// Package restore rebuilds a whole cluster from the bucket at exactly log
// index N: the disaster-recovery procedure behind `akutan restore`.
//
// Restore to a point is a consistent cut. Every view restores the newest
// checkpoints covering its range at or below N and replays the archive to
// exactly N; the log replica is rebuilt to end at N, so the next write gets
// N+1. The restored cluster starts a new timeline: a new store prefix that
// receives a copy of the history through N (archived segments, the last
// one cut at N, and the checkpoints the restore used), because the old
// prefix may hold entries and checkpoints past N that belong to the
// abandoned history. Nothing is written over existing data: data dirs must
// be empty and the target prefix must hold no catalog.
package restore
