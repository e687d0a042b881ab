package viewsvc

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/akutan/akutan/proto/viewpb"
)

// A read far past the log's end fails at once with OutOfRange instead of
// waiting out its deadline; a read within the bound waits and is answered
// when the log gets there; waiting reads are bounded.
func TestReadsPastTheLog(t *testing.T) {
	log := NewMemLog()
	log.Append(newTx(1).insert(newRef(1), idRef(100), intObj(1)).bytes())
	cfg := testConfig(t, SpaceSP, FullRange)
	cfg.MaxAhead = 10
	cfg.MaxWaiters = 2
	v := openView(t, cfg)
	defer v.Close()
	r := start(t, v, log)
	defer r.stop()
	waitApplied(t, v, 1)
	client := serve(t, v)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	t0 := time.Now()
	_, err := recvAll(client.LookupS(ctx, &viewpb.LookupSRequest{Index: 1_000_000, Subjects: []uint64{1<<20 | 1}}))
	wantCode(t, err, codes.OutOfRange, "BEYOND_LOG", "the log ends at 1")
	_, err = client.Digest(ctx, &viewpb.DigestRequest{Index: 12})
	wantCode(t, err, codes.OutOfRange, "BEYOND_LOG", "index 12")
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("refusing took %v", d)
	}

	// Within the bound: waits, and the answer comes once the log gets there.
	got := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := recvAll(client.LookupS(ctx, &viewpb.LookupSRequest{Index: 5, Subjects: []uint64{1<<20 | 1}}))
			got <- err
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		v.mu.Lock()
		n := v.waiters
		v.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters, want 2", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A third waiter is one too many.
	_, err = recvAll(client.LookupS(ctx, &viewpb.LookupSRequest{Index: 5, Subjects: []uint64{1<<20 | 1}}))
	wantCode(t, err, codes.ResourceExhausted, "TOO_MANY_WAITERS", "2 reads wait")
	for range 4 {
		log.Append(pingEntry(1))
	}
	for range 2 {
		if err := <-got; err != nil {
			t.Fatalf("read within the bound: %v", err)
		}
	}
}
