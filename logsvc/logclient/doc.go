// Package logclient is the client library of the log service.
//
// Appender coalesces concurrent appends into batches (one RPC carries many
// callers' entries, which then travel in one Raft entry), sends them to the
// leader and follows leader changes.
//
// Retry rule: an append is retried only when it surely did not happen: the
// replica said it is not the leader or could not take it, or the connection
// was not ready so the request never left. Once a request has left, a broken
// connection or a lost leadership makes the outcome unknown, and Append
// reports logerr.ErrUnknownOutcome instead of retrying, because a retry could
// append the entry twice. Callers that need exactly-once resolve unknown
// outcomes by reading the log (the API server's transactions do), so the log
// keeps no per-client deduplication table.
//
// Reader streams committed entries from an index, fails over between
// replicas, and resumes at the next index with no gap and no duplicate.
package logclient
