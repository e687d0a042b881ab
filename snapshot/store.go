package snapshot

import (
	"context"
	"errors"
	"io"
	"time"
)

// Errors every Store returns, so callers can test with errors.Is.
var (
	// ErrNotFound: the object does not exist.
	ErrNotFound = errors.New("object not found")
	// ErrPrecondition: a conditional put found the object in another state.
	ErrPrecondition = errors.New("precondition failed: the object changed")
	// ErrCorrupt: bytes read back do not match their checksum or format.
	ErrCorrupt = errors.New("corrupt object")
)

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key  string
	Size int64  // the whole object's size, even for a ranged get
	ETag string // changes whenever the object is written
	// Modified is when it was last written, by the store's clock (S3's
	// LastModified, a file's mtime); zero if unknown. Retention judges
	// ages by it, never by the local clock.
	Modified time.Time
}

// Condition makes a PutIf conditional. Exactly one field is set.
type Condition struct {
	// IfAbsent: write only if no object has the key.
	IfAbsent bool
	// IfMatch: write only if the current object's ETag equals this.
	IfMatch string
}

// Store is the small object-store interface Akutan needs. Objects are
// immutable blobs written whole: a reader sees either the old object or the
// new one, never a part. Implementations are safe for concurrent use.
type Store interface {
	// Put writes size bytes from body under key, replacing any object.
	Put(ctx context.Context, key string, body io.Reader, size int64) (ObjectInfo, error)
	// PutIf writes data under key only if cond holds, and otherwise returns
	// ErrPrecondition. It is how the catalogs are updated safely by many
	// writers.
	PutIf(ctx context.Context, key string, data []byte, cond Condition) (ObjectInfo, error)
	// Get reads n bytes from offset off (n < 0: to the end). ErrNotFound if
	// there is no such object.
	Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, ObjectInfo, error)
	// Head describes an object. ErrNotFound if there is none.
	Head(ctx context.Context, key string) (ObjectInfo, error)
	// Delete removes an object; deleting a missing object is not an error.
	Delete(ctx context.Context, key string) error
	// List calls fn for every object whose key starts with prefix, in key
	// order. Only garbage collection and repair list; steady state never
	// does.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
}

// ReadAll reads a whole object.
func ReadAll(ctx context.Context, s Store, key string) ([]byte, ObjectInfo, error) {
	rc, info, err := s.Get(ctx, key, 0, -1)
	if err != nil {
		return nil, info, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, info, err
	}
	return b, info, nil
}
