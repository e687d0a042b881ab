package snapshot

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/akutan/akutan/internal/backoff"
)

// Bucket layout, relative to the store's root (see Prefixed for per-cluster
// prefixes).
const (
	LogCatalogKey        = "log/catalog.json"
	SegmentPrefix        = "log/segments/"
	CheckpointCatalogKey = "checkpoints/catalog.json"
	CheckpointPrefix     = "checkpoints/"
)

// CatalogFormat is the version of both catalogs' format.
const CatalogFormat = 1

// SegmentRef is a catalog entry for one archived log segment.
type SegmentRef struct {
	First    uint64 `json:"first"`
	Last     uint64 `json:"last"`
	Key      string `json:"key"`
	Size     int64  `json:"size"`
	CRC32C   uint32 `json:"crc32c"`
	RawBytes int64  `json:"raw_bytes"` // entries' bytes before compression
	// Level is 0 for a segment the archiver cut, L+1 for one that
	// compaction merged from segments of level L (compact.go).
	Level int `json:"level,omitempty"`
}

// LogCatalog lists the archived log segments: consecutive, without gaps,
// from the oldest retained one.
type LogCatalog struct {
	Format   int          `json:"format"`
	Segments []SegmentRef `json:"segments"`
	// Retired lists segments that retention removed from Segments, whose
	// objects are deleted once the grace period after At has passed.
	Retired []RetiredRef `json:"retired,omitempty"`
}

// ArchivedThrough is the last archived index, 0 if none.
func (c *LogCatalog) ArchivedThrough() uint64 {
	if len(c.Segments) == 0 {
		return 0
	}
	return c.Segments[len(c.Segments)-1].Last
}

// FirstArchived is the first index still archived, 0 if none.
func (c *LogCatalog) FirstArchived() uint64 {
	if len(c.Segments) == 0 {
		return 0
	}
	return c.Segments[0].First
}

// Find returns the segment holding index.
func (c *LogCatalog) Find(index uint64) (SegmentRef, bool) {
	i := sort.Search(len(c.Segments), func(i int) bool { return c.Segments[i].Last >= index })
	if i == len(c.Segments) || c.Segments[i].First > index {
		return SegmentRef{}, false
	}
	return c.Segments[i], true
}

// Add appends a segment, which must start right after the last one.
func (c *LogCatalog) Add(s SegmentRef) error {
	if want := c.ArchivedThrough() + 1; len(c.Segments) > 0 && s.First != want {
		return fmt.Errorf("segment %d..%d does not follow the archive, which ends at %d", s.First, s.Last, want-1)
	}
	if s.Last < s.First {
		return fmt.Errorf("segment %d..%d is empty", s.First, s.Last)
	}
	c.Segments = append(c.Segments, s)
	return nil
}

func (c *LogCatalog) validate() error {
	for i, s := range c.Segments {
		if s.Last < s.First || (i > 0 && s.First != c.Segments[i-1].Last+1) {
			return fmt.Errorf("log catalog: segment %d..%d out of sequence: %w", s.First, s.Last, ErrCorrupt)
		}
	}
	return nil
}

// CheckpointRef is a catalog entry for one view checkpoint.
type CheckpointRef struct {
	Cluster  string    `json:"cluster"` // the view cluster (datacenter) that wrote it
	Space    string    `json:"space"`   // "sp" or "po"
	Start    uint64    `json:"start"`
	End      uint64    `json:"end"` // 0 means 2^64
	Index    uint64    `json:"index"`
	Manifest string    `json:"manifest"` // key of the manifest
	Bytes    int64     `json:"bytes"`    // data files' total size
	Created  time.Time `json:"created"`
}

// Range is the checkpoint's hash range.
func (r CheckpointRef) Range() Range { return Range{Start: r.Start, End: r.End} }

// CheckpointCatalog lists the checkpoints that exist: a checkpoint exists
// once its manifest is uploaded and listed here.
type CheckpointCatalog struct {
	Format      int             `json:"format"`
	Checkpoints []CheckpointRef `json:"checkpoints"`
	// Retired lists the manifests of checkpoints that retention removed
	// from Checkpoints; a manifest's data files and then the manifest are
	// deleted once the grace period after At has passed.
	Retired []RetiredRef `json:"retired,omitempty"`
}

// Add lists a checkpoint, keeping the list ordered by space, range, index.
func (c *CheckpointCatalog) Add(r CheckpointRef) {
	for _, have := range c.Checkpoints {
		if have.Manifest == r.Manifest {
			return
		}
	}
	c.Checkpoints = append(c.Checkpoints, r)
	sort.SliceStable(c.Checkpoints, func(i, j int) bool {
		a, b := c.Checkpoints[i], c.Checkpoints[j]
		if a.Space != b.Space {
			return a.Space < b.Space
		}
		if a.Start != b.Start {
			return a.Start < b.Start
		}
		if a.End != b.End {
			return a.End < b.End
		}
		return a.Index < b.Index
	})
}

// Remove unlists the checkpoint with the given manifest key.
func (c *CheckpointCatalog) Remove(manifest string) {
	out := c.Checkpoints[:0]
	for _, r := range c.Checkpoints {
		if r.Manifest != manifest {
			out = append(out, r)
		}
	}
	c.Checkpoints = out
}

// LoadLogCatalog reads the log catalog. An absent catalog is empty (with
// ETag "") only in a store never initialised (no MarkerKey); in one that
// was, it was lost, and LoadLogCatalog returns ErrCatalogMissing, so that
// nothing starts a new catalog over the old segments.
func LoadLogCatalog(ctx context.Context, s Store) (*LogCatalog, string, error) {
	c := &LogCatalog{Format: CatalogFormat}
	etag, err := loadCatalog(ctx, s, LogCatalogKey, c)
	if err == nil {
		err = checkFormat(LogCatalogKey, c.Format)
	}
	if err == nil {
		err = c.validate()
	}
	return c, etag, err
}

// UpdateLogCatalog applies fn to the current log catalog and writes it back
// with a conditional put, retrying on a concurrent change. fn may run more
// than once and must decide from its argument only. It may even run again
// after its own change landed (an S3 conditional put retried after a lost
// reply fails although its first try succeeded), so it must notice a change
// already there and return ErrNoChange.
func UpdateLogCatalog(ctx context.Context, s Store, fn func(*LogCatalog) error) (*LogCatalog, error) {
	return update(ctx, s, LogCatalogKey, LoadLogCatalog, fn)
}

// LoadCheckpointCatalog reads the checkpoint catalog; absent means empty,
// or ErrCatalogMissing, as for LoadLogCatalog.
func LoadCheckpointCatalog(ctx context.Context, s Store) (*CheckpointCatalog, string, error) {
	c := &CheckpointCatalog{Format: CatalogFormat}
	etag, err := loadCatalog(ctx, s, CheckpointCatalogKey, c)
	if err == nil {
		err = checkFormat(CheckpointCatalogKey, c.Format)
	}
	return c, etag, err
}

// UpdateCheckpointCatalog is UpdateLogCatalog for the checkpoint catalog.
func UpdateCheckpointCatalog(ctx context.Context, s Store, fn func(*CheckpointCatalog) error) (*CheckpointCatalog, error) {
	return update(ctx, s, CheckpointCatalogKey, LoadCheckpointCatalog, fn)
}

// ErrNoChange, returned by an update function, leaves the catalog as it is.
var ErrNoChange = errors.New("no change")

func update[T any](ctx context.Context, s Store, key string, load func(context.Context, Store) (*T, string, error), fn func(*T) error) (*T, error) {
	delay := backoff.New(5*time.Millisecond, 500*time.Millisecond)
	for attempt := 1; ; attempt++ {
		c, etag, err := load(ctx, s)
		if err != nil {
			return nil, err
		}
		if err := fn(c); errors.Is(err, ErrNoChange) {
			return c, nil
		} else if err != nil {
			return nil, err
		}
		data, err := encodeDoc(c)
		if err != nil {
			return nil, err
		}
		cond := Condition{IfMatch: etag}
		if etag == "" {
			cond = Condition{IfAbsent: true}
		}
		_, err = s.PutIf(ctx, key, data, cond)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, ErrPrecondition) || attempt == 50 {
			return nil, fmt.Errorf("update %s: %w", key, err)
		}
		// Another writer won the race: read its version and try again.
		if err := delay.Wait(ctx); err != nil {
			return nil, err
		}
	}
}

// Documents (catalogs and manifests) are JSON followed by a checksum line,
// "crc32c:xxxxxxxx\n", over the JSON bytes.
func encodeDoc(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return nil, err
	}
	b = append(b, '\n')
	return fmt.Appendf(b, "crc32c:%08x\n", CRC32C(b)), nil
}

func decodeDoc(key string, data []byte, v any) error {
	i := bytes.LastIndex(data, []byte("crc32c:"))
	if i < 0 {
		return fmt.Errorf("%s: no checksum line: %w", key, ErrCorrupt)
	}
	var sum uint32
	if _, err := fmt.Sscanf(string(data[i:]), "crc32c:%08x\n", &sum); err != nil || len(data)-i != len("crc32c:00000000\n") {
		return fmt.Errorf("%s: bad checksum line: %w", key, ErrCorrupt)
	}
	if got := CRC32C(data[:i]); got != sum {
		return fmt.Errorf("%s: checksum %08x, document says %08x: %w", key, got, sum, ErrCorrupt)
	}
	if err := json.Unmarshal(data[:i], v); err != nil {
		return fmt.Errorf("%s: %v: %w", key, err, ErrCorrupt)
	}
	return nil
}

// checkFormat refuses a catalog format this build does not know.
func checkFormat(key string, format int) error {
	if format != CatalogFormat {
		return fmt.Errorf("%s: catalog format %d is not supported (supports %d): %w", key, format, CatalogFormat, ErrCorrupt)
	}
	return nil
}

func loadDoc(ctx context.Context, s Store, key string, v any) (etag string, err error) {
	data, info, err := readBounded(ctx, s, key, MaxDocumentBytes)
	if errors.Is(err, ErrNotFound) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	if err := decodeDoc(key, data, v); err != nil {
		return "", err
	}
	return info.ETag, nil
}
