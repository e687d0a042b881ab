package snapshot

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// DirStore keeps objects as files under a directory: the embedded default,
// for a single machine. Puts write a temporary file, fsync it and rename it
// into place, so objects appear whole or not at all, also across processes.
// PutIf holds an exclusive flock on a per-directory lock file, so processes
// sharing the directory cannot race past each other's conditions.
type DirStore struct {
	root string
}

var _ Store = (*DirStore)(nil)

// tmpDir holds objects being written; List skips it.
const tmpDir = ".tmp"

// NewDirStore opens (creating if needed) a store rooted at dir.
func NewDirStore(dir string) (*DirStore, error) {
	if err := os.MkdirAll(filepath.Join(dir, tmpDir), 0o755); err != nil {
		return nil, fmt.Errorf("dir store: %w", err)
	}
	return &DirStore{root: dir}, nil
}

func (d *DirStore) path(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasPrefix(key, tmpDir) ||
		strings.Contains(key, "\\") || strings.HasSuffix(key, "/") {
		return "", fmt.Errorf("invalid object key %q", key)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." {
			return "", fmt.Errorf("invalid object key %q", key)
		}
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// Put implements Store.
func (d *DirStore) Put(ctx context.Context, key string, body io.Reader, size int64) (ObjectInfo, error) {
	p, err := d.path(key)
	if err != nil {
		return ObjectInfo{}, err
	}
	tmp, err := d.writeTemp(ctx, body, size)
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	return d.install(tmp, p, key)
}

// PutIf implements Store.
func (d *DirStore) PutIf(ctx context.Context, key string, data []byte, cond Condition) (ObjectInfo, error) {
	p, err := d.path(key)
	if err != nil {
		return ObjectInfo{}, err
	}
	tmp, err := d.writeTemp(ctx, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	unlock, err := d.lock()
	if err != nil {
		os.Remove(tmp)
		return ObjectInfo{}, err
	}
	defer unlock()
	cur, err := d.Head(ctx, key)
	switch {
	case errors.Is(err, ErrNotFound):
		if !cond.IfAbsent {
			os.Remove(tmp)
			return ObjectInfo{}, fmt.Errorf("put %s if it matches %s: %w", key, cond.IfMatch, ErrPrecondition)
		}
	case err != nil:
		os.Remove(tmp)
		return ObjectInfo{}, err
	case cond.IfAbsent || cur.ETag != cond.IfMatch:
		os.Remove(tmp)
		return ObjectInfo{}, fmt.Errorf("put %s: %w", key, ErrPrecondition)
	}
	return d.install(tmp, p, key)
}

func (d *DirStore) writeTemp(ctx context.Context, body io.Reader, size int64) (string, error) {
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	tmp := filepath.Join(d.root, tmpDir, hex.EncodeToString(nonce[:]))
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return "", err
	}
	n, err := io.Copy(f, &ctxReader{ctx: ctx, r: body})
	if err == nil && n != size {
		err = fmt.Errorf("body has %d bytes, expected %d", n, size)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	return tmp, nil
}

func (d *DirStore) install(tmp, p, key string) (ObjectInfo, error) {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		os.Remove(tmp)
		return ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	if err := os.Rename(tmp, p); err != nil {
		os.Remove(tmp)
		return ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	if err := syncDir(filepath.Dir(p)); err != nil {
		return ObjectInfo{}, fmt.Errorf("put %s: %w", key, err)
	}
	return d.Head(context.Background(), key)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func (d *DirStore) lock() (func(), error) {
	f, err := os.OpenFile(filepath.Join(d.root, tmpDir, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("dir store lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("dir store lock: %w", err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// Get implements Store.
func (d *DirStore) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, ObjectInfo, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, ObjectInfo{}, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ObjectInfo{}, fmt.Errorf("get %s: %w", key, ErrNotFound)
	} else if err != nil {
		return nil, ObjectInfo{}, fmt.Errorf("get %s: %w", key, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, ObjectInfo{}, fmt.Errorf("get %s: %w", key, err)
	}
	info := fileInfo(key, st)
	if off < 0 || off > info.Size {
		f.Close()
		return nil, info, fmt.Errorf("get %s: offset %d outside object of %d bytes", key, off, info.Size)
	}
	if n < 0 || off+n > info.Size {
		n = info.Size - off
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, off, n), f}, info, nil
}

// Head implements Store.
func (d *DirStore) Head(_ context.Context, key string) (ObjectInfo, error) {
	p, err := d.path(key)
	if err != nil {
		return ObjectInfo{}, err
	}
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return ObjectInfo{}, fmt.Errorf("head %s: %w", key, ErrNotFound)
	} else if err != nil {
		return ObjectInfo{}, fmt.Errorf("head %s: %w", key, err)
	}
	if st.IsDir() {
		return ObjectInfo{}, fmt.Errorf("head %s: %w", key, ErrNotFound)
	}
	return fileInfo(key, st), nil
}

// fileInfo derives the ETag from inode, size and modification time: every
// Put renames a new file into place, so each write changes it.
func fileInfo(key string, st fs.FileInfo) ObjectInfo {
	var ino uint64
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		ino = sys.Ino
	}
	return ObjectInfo{
		Key:      key,
		Size:     st.Size(),
		ETag:     fmt.Sprintf("%x-%x-%x", ino, st.Size(), st.ModTime().UnixNano()),
		Modified: st.ModTime(),
	}
}

// Delete implements Store.
func (d *DirStore) Delete(_ context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// List implements Store.
func (d *DirStore) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	var keys []ObjectInfo
	err := filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(d.root, p)
		key := filepath.ToSlash(rel)
		if e.IsDir() {
			if key == tmpDir {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		st, err := e.Info()
		if err != nil {
			return nil // deleted meanwhile
		}
		keys = append(keys, fileInfo(key, st))
		return nil
	})
	if err != nil {
		return fmt.Errorf("list %s: %w", prefix, err)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].Key < keys[j].Key })
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(k); err != nil {
			return err
		}
	}
	return nil
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
