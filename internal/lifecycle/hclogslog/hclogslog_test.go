package hclogslog

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
)

func TestRoutesIntoSlog(t *testing.T) {
	var buf bytes.Buffer
	l := New(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})), "raft")
	l.Debug("dropped", "k", 1)
	l.Named("transport").With("peer", "n2").Warn("slow", "rtt", "3s")
	l.StandardLogger(&hclogStd).Print("[ERR] broken pipe")
	if l.IsDebug() || !l.IsInfo() {
		t.Fatal("levels do not follow the slog handler")
	}
	var got []map[string]any
	dec := json.NewDecoder(&buf)
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	if len(got) != 2 {
		t.Fatalf("got %d events, want 2: %v", len(got), got)
	}
	if got[0]["level"] != "WARN" || got[0]["msg"] != "slow" || got[0]["component"] != "raft.transport" || got[0]["peer"] != "n2" || got[0]["rtt"] != "3s" {
		t.Fatalf("first event %v", got[0])
	}
	if got[1]["level"] != "ERROR" || got[1]["msg"] != "broken pipe" {
		t.Fatalf("second event %v", got[1])
	}
}

var hclogStd = hclogStdOpts()
