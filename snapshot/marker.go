package snapshot

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// MarkerKey is the bucket marker: written once, when a store (a bucket, or
// a cluster's prefix in one) is initialised, and never deleted. It tells a
// store whose catalogs were never created apart from one that lost them.
const MarkerKey = "akutan-bucket.json"

// MarkerFormat is the version of the marker's format.
const MarkerFormat = 1

// Marker is the bucket marker's content.
type Marker struct {
	Format int `json:"format"`
	// Created is when the marker was written, by the store's clock (the
	// object's modification time); informational.
	Created time.Time `json:"created"`
	// By names what initialised the store ("akutan backup init", "log
	// archiver").
	By string `json:"by,omitempty"`
}

// ErrCatalogMissing: a catalog is absent from a store whose marker says the
// catalogs were created, so it was lost (deleted by hand, by a lifecycle
// rule, or by an older garbage collector). Nothing may treat it as empty:
// an archiver that started a new catalog would orphan every segment of the
// old one. The catalog must be restored (from a replica of the bucket or
// an object version) before anything writes again.
var ErrCatalogMissing = errors.New("catalog is missing from an initialised store; it was lost, not never created")

// ReadMarker reads the store's marker; ErrNotFound if it has none (the
// store was never initialised, or was written before markers existed).
func ReadMarker(ctx context.Context, s Store) (*Marker, error) {
	data, info, err := ReadAll(ctx, s, MarkerKey)
	if err != nil {
		return nil, err
	}
	m := &Marker{}
	if err := decodeDoc(MarkerKey, data, m); err != nil {
		return nil, err
	}
	if m.Format != MarkerFormat {
		return nil, fmt.Errorf("%s: marker format %d is not supported (supports %d): %w", MarkerKey, m.Format, MarkerFormat, ErrCorrupt)
	}
	if !info.Modified.IsZero() {
		m.Created = info.Modified
	}
	return m, nil
}

// InitBucket initialises a store: it creates both catalogs, empty, where
// they are absent, then writes the marker. It is idempotent and safe to run
// concurrently; `akutan backup init` and the first log archiver on a store
// call it.
//
// It refuses, with ErrCatalogMissing, when a catalog is absent but the
// store shows it existed: the marker is there, or (for a store written
// before markers existed) log segments are. Listing for the latter happens
// only while the log catalog is absent, so never in steady state.
func InitBucket(ctx context.Context, s Store, by string) (*Marker, error) {
	m, err := ReadMarker(ctx, s)
	switch {
	case err == nil:
		// Initialised: both catalogs must be there.
		for _, key := range []string{LogCatalogKey, CheckpointCatalogKey} {
			if _, err := s.Head(ctx, key); errors.Is(err, ErrNotFound) {
				return nil, missingCatalog(key, m)
			} else if err != nil {
				return nil, fmt.Errorf("init store: %w", err)
			}
		}
		return m, nil
	case !errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("init store: %w", err)
	}
	if _, err := s.Head(ctx, LogCatalogKey); errors.Is(err, ErrNotFound) {
		seg, err := anyObject(ctx, s, SegmentPrefix)
		if err != nil {
			return nil, fmt.Errorf("init store: %w", err)
		}
		if seg != "" {
			return nil, fmt.Errorf("init store: %s is absent but %s holds %s: %w", LogCatalogKey, SegmentPrefix, seg, ErrCatalogMissing)
		}
		if err := createDoc(ctx, s, LogCatalogKey, &LogCatalog{Format: CatalogFormat}); err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("init store: %w", err)
	}
	// Checkpoint objects without a catalog are torn uploads by definition
	// (only a catalog entry makes a checkpoint exist), so an absent
	// checkpoint catalog is simply created.
	if err := createDoc(ctx, s, CheckpointCatalogKey, &CheckpointCatalog{Format: CatalogFormat}); err != nil {
		return nil, err
	}
	if err := createDoc(ctx, s, MarkerKey, &Marker{Format: MarkerFormat, Created: time.Now().UTC(), By: by}); err != nil {
		return nil, err
	}
	return ReadMarker(ctx, s)
}

// createDoc writes a document unless one is there already.
func createDoc(ctx context.Context, s Store, key string, v any) error {
	data, err := encodeDoc(v)
	if err != nil {
		return err
	}
	if _, err := s.PutIf(ctx, key, data, Condition{IfAbsent: true}); err != nil && !errors.Is(err, ErrPrecondition) {
		return fmt.Errorf("init store: %w", err)
	}
	return nil
}

// anyObject returns the key of some object under prefix, or "".
func anyObject(ctx context.Context, s Store, prefix string) (string, error) {
	errFound := errors.New("found")
	var key string
	err := s.List(ctx, prefix, func(o ObjectInfo) error {
		key = o.Key
		return errFound
	})
	if err != nil && !errors.Is(err, errFound) {
		return "", err
	}
	return key, nil
}

func missingCatalog(key string, m *Marker) error {
	return fmt.Errorf("%s is absent, but the store was initialised at %s (%s): %w; restore the catalog before anything writes",
		key, m.Created.UTC().Format(time.RFC3339), MarkerKey, ErrCatalogMissing)
}

// loadCatalog reads a catalog document into v. An absent catalog is empty
// (etag "") in a store never initialised, and ErrCatalogMissing in one
// that was. InitBucket writes the catalogs before the marker, so a catalog
// seen absent and then a marker seen present may both have been written
// in between: the catalog is read once more before it is called lost.
func loadCatalog(ctx context.Context, s Store, key string, v any) (string, error) {
	etag, err := loadDoc(ctx, s, key, v)
	if err != nil || etag != "" {
		return etag, err
	}
	m, err := ReadMarker(ctx, s)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	} else if err != nil {
		return "", fmt.Errorf("%s is absent; reading the marker: %w", key, err)
	}
	if etag, err = loadDoc(ctx, s, key, v); err != nil || etag != "" {
		return etag, err
	}
	return "", missingCatalog(key, m)
}
