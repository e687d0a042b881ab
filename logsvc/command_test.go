package logsvc

import (
	"bytes"
	"errors"
	"testing"
)

func TestCommandRoundTrip(t *testing.T) {
	entries := [][]byte{pingEntry("a"), {}, pingEntry("c")}
	c, err := decodeCommand(encodeAppend(entries))
	if err != nil || c.kind != cmdAppend || len(c.entries) != 3 || !bytes.Equal(c.entries[2], entries[2]) {
		t.Fatalf("append: %+v %v", c, err)
	}
	if c, err := decodeCommand(encodeIndex(cmdDiscard, 1<<40)); err != nil || c.index != 1<<40 {
		t.Fatalf("discard: %+v %v", c, err)
	}
	if c, err := decodeCommand(encodeRegister("n1", "127.0.0.1:9")); err != nil || c.id != "n1" || c.addr != "127.0.0.1:9" {
		t.Fatalf("register: %+v %v", c, err)
	}
	full := encodeAppend(entries)
	for i := 0; i < len(full); i++ {
		if _, err := decodeCommand(full[:i]); !errors.Is(err, errBadCommand) {
			t.Fatalf("truncated at %d: %v", i, err)
		}
	}
	if _, err := decodeCommand([]byte{99}); !errors.Is(err, errBadCommand) {
		t.Fatalf("unknown kind: %v", err)
	}
}

func FuzzDecodeCommand(f *testing.F) {
	f.Add(encodeAppend([][]byte{pingEntry("x")}))
	f.Add(encodeRegister("a", "b"))
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeCommand(b)
		peekEnvelope(b)
	})
}

func TestPeekEnvelope(t *testing.T) {
	h, err := peekEnvelope(versionChangeEntry(1, 5))
	if err != nil || h.version != 1 || !h.versionChange || h.toVersion != 5 {
		t.Fatalf("version change head %+v %v", h, err)
	}
	h, err = peekEnvelope(pingEntry("p"))
	if err != nil || h.version != 1 || h.versionChange {
		t.Fatalf("ping head %+v %v", h, err)
	}
	if _, err := peekEnvelope([]byte{0x0a, 0x10}); err == nil {
		t.Fatal("truncated envelope accepted")
	}
}
