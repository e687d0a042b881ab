package logclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/akutan/akutan/internal/backoff"
	"github.com/akutan/akutan/logsvc/logerr"
	"github.com/akutan/akutan/snapshot"
)

// archive reads discarded entries from the log archive.
type archive struct {
	store snapshot.Store
	cat   *snapshot.LogCatalog // cached; reloaded when it lacks an index
}

// archiveBatch is how many entries each fn call gets from a segment.
const archiveBatch = 1000

// stream delivers entries from *next on, segment by segment, until *next
// reaches until (the log's first retained index), and none at or past it. Store errors other than
// corruption are retried with backoff; a corrupt object, or an index the
// archive does not hold, ends the stream.
func (a *archive) stream(ctx context.Context, next *uint64, until uint64, fn func([]Entry) error) error {
	delay := backoff.New(50*time.Millisecond, 5*time.Second)
	for *next < until {
		err := a.segment(ctx, next, until, fn)
		var fe fnError
		switch {
		case err == nil:
			delay.Reset()
			continue
		case errors.As(err, &fe), ctx.Err() != nil, errors.Is(err, snapshot.ErrCorrupt), errors.Is(err, logerr.ErrTruncated):
			return err
		}
		if err := delay.Wait(ctx); err != nil {
			return err
		}
	}
	return nil
}

// segment delivers the rest of the segment holding *next, below until:
// from until on the log is the authority (after a restore the archive may
// hold an abandoned timeline past it).
func (a *archive) segment(ctx context.Context, next *uint64, until uint64, fn func([]Entry) error) error {
	ref, err := a.find(ctx, *next)
	if err != nil {
		return err
	}
	entries, err := snapshot.ReadSegment(ctx, a.store, ref)
	if err != nil {
		return err
	}
	entries = entries[*next-ref.First:]
	if last := entries[len(entries)-1].Index; last >= until {
		entries = entries[:len(entries)-int(last-until+1)]
	}
	for len(entries) > 0 {
		n := min(len(entries), archiveBatch)
		batch := make([]Entry, n)
		for i, e := range entries[:n] {
			batch[i] = Entry{Index: e.Index, Data: e.Data}
		}
		*next = batch[n-1].Index + 1
		if err := fn(batch); err != nil {
			return fnError{err}
		}
		entries = entries[n:]
	}
	return nil
}

// find returns the catalog entry of the segment holding index, reloading
// the catalog when the cached one does not reach it.
func (a *archive) find(ctx context.Context, index uint64) (snapshot.SegmentRef, error) {
	if a.cat != nil {
		if ref, ok := a.cat.Find(index); ok {
			return ref, nil
		}
	}
	cat, _, err := snapshot.LoadLogCatalog(ctx, a.store)
	if err != nil {
		return snapshot.SegmentRef{}, fmt.Errorf("archive catalog: %w", err)
	}
	a.cat = cat
	if ref, ok := cat.Find(index); ok {
		return ref, nil
	}
	return snapshot.SegmentRef{}, logerr.New(logerr.ErrTruncated, nil,
		"index %d is below the log's first retained index and not in the archive (which holds %d..%d)",
		index, cat.FirstArchived(), cat.ArchivedThrough())
}

// ReadArchive streams entries from..through from the archive alone, for a
// log that no longer runs (an offline restore): consecutive, verified
// segment by segment, store errors other than corruption retried until ctx
// ends.
func ReadArchive(ctx context.Context, store snapshot.Store, from, through uint64, fn func([]Entry) error) error {
	a := &archive{store: store}
	next := from
	err := a.stream(ctx, &next, through+1, fn)
	var fe fnError
	if errors.As(err, &fe) {
		return fe.err
	}
	return err
}
