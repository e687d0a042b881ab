package logsvc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"

	"github.com/akutan/akutan/internal/lifecycle/hclogslog"
	"github.com/akutan/akutan/logsvc/internal/entrystore"
	"github.com/akutan/akutan/snapshot"
)

// RestoreConfig names the single voter a restored log starts as.
type RestoreConfig struct {
	ID       string
	RaftAddr string
	// RaftStore is the Raft log store kind; it must match the replica's
	// --raft-store (default StoreWAL).
	RaftStore string
	// LogVersion is the log version in force at the restored index. Zero
	// reads every archived entry up to the index to find it, which also
	// verifies each segment's checksums.
	LogVersion uint32
	// MaxSupportedVersion is the replica's; 0 means this build's.
	MaxSupportedVersion uint32
	// Logger receives Raft's events while the data dir is built; nil logs
	// warnings and errors as text to stderr.
	Logger *slog.Logger
}

// RestoreDataDir builds, in the empty directory dir, the data dir of a
// single-voter log replica whose log ends at exactly toIndex of the
// archive in store. Starting the replica (Start, or akutan-log with its
// usual flags and this dir) yields a working cluster whose last index is
// toIndex and whose next append gets toIndex+1; other replicas join with
// AddVoter and catch up from a Raft snapshot.
//
// The restored log holds no entries: it starts at toIndex+1 with
// archived-through toIndex, and readers fetch 1..toIndex from the archive
// (logclient.Reader.UseArchive). That makes the restore O(1) in the log's
// length, and the log as small as after a truncation. Guard claims made
// before toIndex are not kept, as after a DiscardPrefix: a guarded append
// must guard from at least toIndex.
//
// If the archive holds entries past toIndex (the timeline being abandoned),
// the restored log must not archive into the same catalog: point the
// restored replica's --archive at a new prefix. Should it archive there
// anyway, the archiver compares its entries with the archived ones at the
// same indexes and stops with ErrArchiveMismatch instead of counting them
// as archived.
//
// progress, if not nil, is called as archived entries are checked (done,
// total) when LogVersion is 0.
func RestoreDataDir(ctx context.Context, dir string, cfg RestoreConfig, store snapshot.Store, toIndex uint64, progress func(done, total uint64)) error {
	if cfg.ID == "" || cfg.RaftAddr == "" {
		return errors.New("restore log: need the replica's id and raft address")
	}
	if cfg.RaftStore == "" {
		cfg.RaftStore = StoreWAL
	}
	if toIndex == 0 {
		return errors.New("restore log: index 0: indexes start at 1")
	}
	if err := checkEmptyDir(dir); err != nil {
		return err
	}
	cat, _, err := snapshot.LoadLogCatalog(ctx, store)
	if err != nil {
		return fmt.Errorf("restore log: %w", err)
	}
	if cat.ArchivedThrough() < toIndex {
		return fmt.Errorf("restore log at %d: the archive holds entries only through %d", toIndex, cat.ArchivedThrough())
	}
	version := cfg.LogVersion
	if version == 0 {
		if version, err = archivedVersion(ctx, store, cat, toIndex, progress); err != nil {
			return fmt.Errorf("restore log at %d: %w", toIndex, err)
		}
	}
	if cfg.MaxSupportedVersion == 0 {
		cfg.MaxSupportedVersion = MaxSupportedVersion
	}
	if version > cfg.MaxSupportedVersion {
		return fmt.Errorf("restore log at %d: log version %d is above the supported %d", toIndex, version, cfg.MaxSupportedVersion)
	}

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	store0, err := entrystore.Open(filepath.Join(dir, "entries"))
	if err != nil {
		return err
	}
	defer store0.Close()
	// RaftApplied 1 is the Raft snapshot below: Raft's log starts after it.
	meta := entrystore.Meta{RaftApplied: 1, First: toIndex + 1, Last: toIndex, ArchivedThrough: toIndex, LogVersion: version}
	if err := store0.InitEmpty(meta); err != nil {
		return err
	}

	// Raft state: term 1 and a snapshot at Raft index 1 holding the store
	// and a configuration of this one voter. A joining replica whose log
	// is behind it installs the snapshot, which gives it the same store.
	slogger := cfg.Logger
	if slogger == nil {
		slogger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	logger := hclogslog.New(slogger, "restore")
	logs, stable, closer, err := openRaftStore(cfg.RaftStore, filepath.Join(dir, "raft-"+cfg.RaftStore), logger)
	if err != nil {
		return err
	}
	defer closer.Close()
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(dir, "snapshots"), 2, logger)
	if err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	if has, err := raft.HasExistingState(logs, stable, snaps); err != nil || has {
		return fmt.Errorf("restore log: raft state exists already (%v)", err)
	}
	if err := stable.SetUint64([]byte("CurrentTerm"), 1); err != nil {
		return fmt.Errorf("restore log: set term: %w", err)
	}
	conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(cfg.ID), Address: raft.ServerAddress(cfg.RaftAddr)}}}
	// The transport only encodes the deprecated peer list, as the TCP
	// transport would: the address itself.
	_, trans := raft.NewInmemTransport(raft.ServerAddress(cfg.RaftAddr))
	defer trans.Close()
	sink, err := snaps.Create(raft.SnapshotVersionMax, 1, 1, conf, 1, trans)
	if err != nil {
		return fmt.Errorf("restore log: create raft snapshot: %w", err)
	}
	snap := store0.Snapshot()
	defer snap.Close()
	if _, err := snap.WriteTo(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("restore log: write raft snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("restore log: write raft snapshot: %w", err)
	}
	return nil
}

// checkEmptyDir refuses a directory that holds anything: a restore never
// writes over existing data.
func checkEmptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("restore log: %w", err)
	}
	if len(ents) > 0 {
		return fmt.Errorf("restore log: %s is not empty; restore only into an empty data dir", dir)
	}
	return nil
}

// archivedVersion reads the archive's entries through toIndex, verifying
// every segment, and returns the log version in force at toIndex.
func archivedVersion(ctx context.Context, store snapshot.Store, cat *snapshot.LogCatalog, toIndex uint64, progress func(done, total uint64)) (uint32, error) {
	version := uint32(1)
	if cat.FirstArchived() > 1 {
		return 0, fmt.Errorf("the archive starts at %d, so the log version cannot be read from it; give it", cat.FirstArchived())
	}
	for _, ref := range cat.Segments {
		if ref.First > toIndex {
			break
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		entries, err := snapshot.ReadSegment(ctx, store, ref)
		if err != nil {
			return 0, err
		}
		for _, e := range entries {
			if e.Index > toIndex {
				break
			}
			h, err := peekEnvelope(e.Data)
			if err != nil {
				return 0, fmt.Errorf("archived entry %d: %w", e.Index, err)
			}
			if h.versionChange && h.toVersion > version {
				version = h.toVersion
			}
		}
		if progress != nil {
			progress(min(ref.Last, toIndex), toIndex)
		}
	}
	return version, nil
}
