// Package apipb is the public gRPC API of Akutan, served by apisvc: writes
// of transactions, lookups at a log index, and cluster status. See api.proto.
package apipb
