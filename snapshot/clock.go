package snapshot

import (
	"bytes"
	"context"
	"fmt"
	"time"
)

// ClockKey is the object StoreNow writes to read the store's clock.
const ClockKey = "akutan-clock"

// Clock is an optional interface of a Store that knows its own time
// without a write (test stores that simulate time passing implement it).
type Clock interface {
	Now(ctx context.Context) (time.Time, error)
}

// StoreNow returns the store's current time: the modification time the
// store gives a small object written now (ClockKey). Retention and garbage
// collection judge every age by it and by the objects' own modification
// times, never by the local clock, so a pruner whose clock is fast cannot
// delete what is still young. S3 reports times to the second, so the
// answer may be up to a second early, which only makes objects younger.
func StoreNow(ctx context.Context, s Store) (time.Time, error) {
	if c, ok := s.(Clock); ok {
		return c.Now(ctx)
	}
	body := []byte("clock probe\n")
	if _, err := s.Put(ctx, ClockKey, bytes.NewReader(body), int64(len(body))); err != nil {
		return time.Time{}, fmt.Errorf("read the store's clock: %w", err)
	}
	info, err := s.Head(ctx, ClockKey)
	if err != nil {
		return time.Time{}, fmt.Errorf("read the store's clock: %w", err)
	}
	if info.Modified.IsZero() {
		return time.Time{}, fmt.Errorf("read the store's clock: %s has no modification time", ClockKey)
	}
	return info.Modified, nil
}
