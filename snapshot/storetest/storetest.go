// Package storetest holds fault injection for snapshot.Store, for tests of
// the servers that write to object storage.
package storetest

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/akutan/akutan/snapshot"
)

// ErrDown is what every call of a Flaky store returns while it is down.
var ErrDown = errors.New("store unreachable")

// Flaky wraps a store that can be taken down: while Down is set, every
// call fails with ErrDown, as an unreachable bucket would.
type Flaky struct {
	snapshot.Store
	Down atomic.Bool
}

var _ snapshot.Store = (*Flaky)(nil)

func (f *Flaky) Put(ctx context.Context, key string, body io.Reader, size int64) (snapshot.ObjectInfo, error) {
	if f.Down.Load() {
		return snapshot.ObjectInfo{}, ErrDown
	}
	return f.Store.Put(ctx, key, body, size)
}

func (f *Flaky) PutIf(ctx context.Context, key string, data []byte, cond snapshot.Condition) (snapshot.ObjectInfo, error) {
	if f.Down.Load() {
		return snapshot.ObjectInfo{}, ErrDown
	}
	return f.Store.PutIf(ctx, key, data, cond)
}

func (f *Flaky) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, snapshot.ObjectInfo, error) {
	if f.Down.Load() {
		return nil, snapshot.ObjectInfo{}, ErrDown
	}
	return f.Store.Get(ctx, key, off, n)
}

func (f *Flaky) Head(ctx context.Context, key string) (snapshot.ObjectInfo, error) {
	if f.Down.Load() {
		return snapshot.ObjectInfo{}, ErrDown
	}
	return f.Store.Head(ctx, key)
}

func (f *Flaky) Delete(ctx context.Context, key string) error {
	if f.Down.Load() {
		return ErrDown
	}
	return f.Store.Delete(ctx, key)
}

func (f *Flaky) List(ctx context.Context, prefix string, fn func(snapshot.ObjectInfo) error) error {
	if f.Down.Load() {
		return ErrDown
	}
	return f.Store.List(ctx, prefix, fn)
}

// Clocked is a store whose clock (snapshot.Clock) runs Ahead of the real
// store's, as seen by retention and garbage collection: a test moves time
// forward without touching the objects' own times, as a store whose
// objects age would.
type Clocked struct {
	snapshot.Store
	ahead atomic.Int64
}

var _ snapshot.Clock = (*Clocked)(nil)

// NewClocked wraps s.
func NewClocked(s snapshot.Store) *Clocked { return &Clocked{Store: s} }

// Advance moves the clock d further ahead.
func (c *Clocked) Advance(d time.Duration) { c.ahead.Add(int64(d)) }

// Now implements snapshot.Clock: the store's time plus what was advanced.
func (c *Clocked) Now(ctx context.Context) (time.Time, error) {
	t, err := snapshot.StoreNow(ctx, c.Store)
	return t.Add(time.Duration(c.ahead.Load())), err
}
