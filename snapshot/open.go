package snapshot

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
)

// An Opener opens a store from a URL of its scheme.
type Opener func(ctx context.Context, u *url.URL) (Store, error)

var openers = struct {
	sync.Mutex
	m map[string]Opener
}{m: map[string]Opener{}}

// RegisterScheme makes OpenStore open URLs of scheme with open. Store
// packages call it from init (package s3store registers "s3"), so a binary
// links only the backends it imports.
func RegisterScheme(scheme string, open Opener) {
	openers.Lock()
	defer openers.Unlock()
	if _, dup := openers.m[scheme]; dup {
		panic("snapshot: scheme " + scheme + " registered twice")
	}
	openers.m[scheme] = open
}

// OpenStore opens a store named by a URL:
//
//	/abs/dir or file:///abs/dir            a DirStore
//	s3://bucket[/prefix][?options]          an S3 store (package s3store,
//	                                        which the binary must import)
func OpenStore(ctx context.Context, rawURL string) (Store, error) {
	if !strings.Contains(rawURL, "://") {
		if rawURL == "" {
			return nil, errors.New("open store: empty location")
		}
		return NewDirStore(rawURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if u.Scheme == "file" {
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("open store %s: file URL has host %q; use file:///abs/dir", rawURL, u.Host)
		}
		if u.Path == "" {
			return nil, fmt.Errorf("open store %s: no directory", rawURL)
		}
		return NewDirStore(u.Path)
	}
	openers.Lock()
	open, ok := openers.m[u.Scheme]
	known := []string{"file"}
	for s := range openers.m {
		known = append(known, s)
	}
	openers.Unlock()
	if !ok {
		sort.Strings(known)
		return nil, fmt.Errorf("open store %s: scheme %q is not one of %s", rawURL, u.Scheme, strings.Join(known, ", "))
	}
	return open(ctx, u)
}
