// Package chaos holds the pieces of the linearizability check under faults
// (localstack's TestChaos): a TCP proxy that cuts a link whole or in one
// direction, an HTTP proxy that makes an S3 store answer 500 and 503
// SlowDown, and a history of operations on per-key fact sets with the
// porcupine model that checks it.
package chaos
