// Package entrypb is the format of Akutan log entries: a versioned Envelope
// around a transaction, decision, version change or ping. The log service
// validates and version-gates envelopes; views and API servers interpret
// them. See entry.proto for the meaning of every field.
package entrypb
