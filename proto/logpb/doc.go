// Package logpb is the gRPC contract of the log service (logsvc): Append,
// Read, Info, DiscardPrefix and membership changes. See log.proto.
package logpb
