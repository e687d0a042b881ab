// Package viewpb is the gRPC contract of the view service (viewsvc): batched
// lookups at a log index, Status and Digest. See view.proto.
package viewpb
