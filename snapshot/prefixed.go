package snapshot

import (
	"context"
	"io"
	"strings"
)

// Prefixed returns a store that keeps every key under prefix in s, so that
// several clusters (or tests) can share one bucket.
func Prefixed(s Store, prefix string) Store {
	if prefix == "" {
		return s
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return &prefixed{s: s, p: prefix}
}

type prefixed struct {
	s Store
	p string
}

func (p *prefixed) strip(i ObjectInfo) ObjectInfo {
	i.Key = strings.TrimPrefix(i.Key, p.p)
	return i
}

func (p *prefixed) Put(ctx context.Context, key string, body io.Reader, size int64) (ObjectInfo, error) {
	i, err := p.s.Put(ctx, p.p+key, body, size)
	return p.strip(i), err
}

func (p *prefixed) PutIf(ctx context.Context, key string, data []byte, cond Condition) (ObjectInfo, error) {
	i, err := p.s.PutIf(ctx, p.p+key, data, cond)
	return p.strip(i), err
}

func (p *prefixed) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, ObjectInfo, error) {
	rc, i, err := p.s.Get(ctx, p.p+key, off, n)
	return rc, p.strip(i), err
}

func (p *prefixed) Head(ctx context.Context, key string) (ObjectInfo, error) {
	i, err := p.s.Head(ctx, p.p+key)
	return p.strip(i), err
}

func (p *prefixed) Delete(ctx context.Context, key string) error { return p.s.Delete(ctx, p.p+key) }

func (p *prefixed) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	return p.s.List(ctx, p.p+prefix, func(i ObjectInfo) error { return fn(p.strip(i)) })
}
