package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"time"
)

// ManifestFormat is the version of the checkpoint manifest format.
const ManifestFormat = 1

// Manifest describes one view checkpoint: the state of a view of one space
// and hash range at log index Index, as data files. It is uploaded after
// every data file, and listed in the checkpoint catalog after that.
type Manifest struct {
	Format     int       `json:"format"`
	Cluster    string    `json:"cluster"` // the view cluster (datacenter) that wrote it
	Space      string    `json:"space"`   // "sp" or "po"
	Start      uint64    `json:"start"`
	End        uint64    `json:"end"` // 0 means 2^64
	Index      uint64    `json:"index"`
	LogVersion uint32    `json:"log_version"`
	Created    time.Time `json:"created"`
	Files      []FileRef `json:"files"`
}

// FileRef is one data file of a checkpoint. Kind and the hash range are the
// view's to interpret (viewsvc documents them): a file of hash-ordered facts
// covers [HashStart, HashEnd) and can be taken whole or cut by key range.
type FileRef struct {
	Key       string `json:"key"`
	Kind      string `json:"kind"`
	HashStart uint64 `json:"hash_start"`
	HashEnd   uint64 `json:"hash_end"` // 0 means 2^64
	Size      int64  `json:"size"`
	CRC32C    uint32 `json:"crc32c"`
	Entries   int64  `json:"entries"`
}

// Range is the manifest's hash range.
func (m *Manifest) Range() Range { return Range{Start: m.Start, End: m.End} }

// Bytes is the data files' total size.
func (m *Manifest) Bytes() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// CheckpointDir returns a fresh key prefix for a checkpoint's objects. The
// random suffix keeps two replicas of one range that checkpoint at the same
// index apart.
func CheckpointDir(space string, r Range, index uint64) string {
	var nonce [4]byte
	_, _ = rand.Read(nonce[:])
	return fmt.Sprintf("%s%s/%016x-%016x/%020d-%s/", CheckpointPrefix, space, r.Start, r.End, index, hex.EncodeToString(nonce[:]))
}

// ManifestName is the manifest's name inside a checkpoint's prefix.
const ManifestName = "manifest.json"

// PutManifest uploads a manifest; call it after every data file.
func PutManifest(ctx context.Context, s Store, key string, m *Manifest) error {
	m.Format = ManifestFormat
	data, err := encodeDoc(m)
	if err != nil {
		return err
	}
	_, err = s.PutIf(ctx, key, data, Condition{IfAbsent: true})
	return err
}

// LoadManifest reads and verifies a manifest.
func LoadManifest(ctx context.Context, s Store, key string) (*Manifest, error) {
	data, _, err := readBounded(ctx, s, key, MaxDocumentBytes)
	if err != nil {
		return nil, err
	}
	return decodeManifest(key, data)
}

// decodeManifest verifies and decodes a manifest object read from key.
func decodeManifest(key string, data []byte) (*Manifest, error) {
	m := &Manifest{}
	if err := decodeDoc(key, data, m); err != nil {
		return nil, err
	}
	if m.Format != ManifestFormat {
		return nil, fmt.Errorf("%s: manifest format %d is not supported (supports %d): %w", key, m.Format, ManifestFormat, ErrCorrupt)
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("%s: %v: %w", key, err, ErrCorrupt)
	}
	return m, nil
}

// validate checks what a reader of a manifest relies on: every file has a
// key and no negative size or count, and the sizes add up without
// overflowing.
func (m *Manifest) validate() error {
	if m.End != 0 && m.End <= m.Start {
		return fmt.Errorf("empty hash range %v", m.Range())
	}
	var total int64
	for i, f := range m.Files {
		switch {
		case f.Key == "":
			return fmt.Errorf("file %d has no key", i)
		case f.Size < 0 || f.Entries < 0:
			return fmt.Errorf("file %s has %d bytes and %d entries", f.Key, f.Size, f.Entries)
		case f.Size > math.MaxInt64-total:
			return fmt.Errorf("files add up to more than 2^63 bytes")
		}
		total += f.Size
	}
	return nil
}
