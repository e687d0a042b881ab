package logsvc

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/akutan/akutan/logsvc/logclient"
)

// A reader that prefers its first replica (a view's own datacenter's)
// reads from it, fails over while it is down, and comes back to it once it
// answers again; every entry arrives once, in order, throughout.
func TestReaderPrefersFirstReplica(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	app := logclient.NewAppender(c.addrs(), logclient.DefaultAppenderConfig())
	defer app.Close()
	appended := func(n int) uint64 {
		t.Helper()
		var last uint64
		for i := range n {
			idx, err := app.Append(ctx, pingEntry(fmt.Sprint(i)))
			if err != nil {
				t.Fatal(err)
			}
			last = idx
		}
		return last
	}
	appended(5)

	r := logclient.NewReader(c.addrs()).PreferFirst(300 * time.Millisecond)
	defer r.Close()
	var mu sync.Mutex
	var got []uint64
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- r.Stream(sctx, 1, func(es []logclient.Entry) error {
			mu.Lock()
			defer mu.Unlock()
			for _, e := range es {
				got = append(got, e.Index)
			}
			return nil
		})
	}()
	waitCurrent := func(what string, ok func(string) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !ok(r.Current()) {
			if time.Now().After(deadline) {
				t.Fatalf("reader never %s; reads from %q", what, r.Current())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	first := c.addrs()[0]
	waitCurrent("read from the first replica", func(a string) bool { return a == first })

	c.stop(0)
	c.waitLeader()
	waitCurrent("failed over", func(a string) bool { return a != "" && a != first })
	appended(5)

	c.start(0)
	c.waitLeader()
	waitCurrent("came back to the first replica", func(a string) bool { return a == first })
	last := appended(5)

	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		reached := len(got) > 0 && got[len(got)-1] >= last
		mu.Unlock()
		if reached {
			break
		}
		if time.Now().After(deadline) {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("read up to %v, appended up to %d", got, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	<-done
	mu.Lock()
	defer mu.Unlock()
	for i, idx := range got {
		if idx != uint64(i+1) {
			t.Fatalf("entry %d has index %d: every index once, in order (%v)", i, idx, got)
		}
	}
}
