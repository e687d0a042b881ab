package viewsvc

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/proto/viewpb"
)

// Large facts stream in messages under the byte budget, each fact whole,
// so no message nears the gRPC limit.
func TestChunksUnderByteBudget(t *testing.T) {
	log := NewMemLog()
	tx := newTx(1)
	const n, size = 6, 400 << 10
	for i := range n {
		tx.insert(newRef(1), idRef(100), strObj(strings.Repeat(string(rune('a'+i)), size), ""))
	}
	log.Append(tx.bytes())
	cfg := testConfig(t, SpaceSP, FullRange)
	cfg.MaxChunkBytes = 512 << 10
	v := openView(t, cfg)
	defer v.Close()
	r := start(t, v, log)
	defer r.stop()
	waitApplied(t, v, 1)
	client := serve(t, v)
	resps, err := recvAll(client.LookupS(t.Context(), &viewpb.LookupSRequest{Index: 1, Subjects: []uint64{1<<20 | 1}}))
	if err != nil {
		t.Fatal(err)
	}
	facts := 0
	for _, r := range resps {
		facts += len(r.Facts)
		if b := proto.Size(r); b > 2*size+4096 {
			t.Errorf("message of %d bytes with %d facts", b, len(r.Facts))
		}
	}
	if facts != n || len(resps) < n/2 {
		t.Fatalf("%d facts in %d messages; want %d facts in at least %d", facts, len(resps), n, n/2)
	}
}
