package logsvc

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/proto/entrypb"
)

// FuzzEnvelope: the log's own reading of an entry (validateEnvelope,
// peekEnvelope) agrees with protobuf, which every view uses: the log
// accepts only envelopes protobuf decodes with a command, and sees the
// version and version change that protobuf sees.
func FuzzEnvelope(f *testing.F) {
	tx, _ := proto.Marshal(&entrypb.Envelope{Version: 1, Command: &entrypb.Envelope_Transaction{Transaction: &entrypb.Transaction{
		NewNodes: 1, Inserts: []*entrypb.Insert{{Subject: &entrypb.NodeRef{Ref: &entrypb.NodeRef_NewNode{NewNode: 1}}}}}}})
	f.Add(tx, uint32(1), uint32(1))
	f.Add(pingEntry("x"), uint32(1), uint32(2))
	f.Add(versionChangeEntry(1, 2), uint32(1), uint32(2))
	f.Add(append(versionChangeEntry(1, 2), tx...), uint32(1), uint32(2))      // the last command wins
	f.Add(append(versionChangeEntry(1, 3), 0x22, 0x00), uint32(1), uint32(3)) // an empty change merges
	f.Add([]byte{0x08, 0x80, 0x80, 0x80, 0x80, 0x10, 0x2a, 0x00}, uint32(1), uint32(1))
	f.Fuzz(func(t *testing.T, b []byte, logVersion, supported uint32) {
		h, err := validateEnvelope(0, b, logVersion, supported)
		ph, perr := peekEnvelope(b)
		var env entrypb.Envelope
		uerr := proto.Unmarshal(b, &env)
		if perr == nil && uerr != nil {
			return // peek reads only the head; validateEnvelope must refuse it
		}
		if uerr == nil {
			if perr != nil {
				t.Fatalf("%x: protobuf decodes %v, peekEnvelope refuses: %v", b, &env, perr)
			}
			vc := env.GetVersionChange()
			if ph.version != env.GetVersion() || ph.versionChange != (vc != nil) || ph.toVersion != vc.GetToVersion() {
				t.Fatalf("%x: peekEnvelope reads %+v, protobuf %v", b, ph, &env)
			}
		}
		if err != nil {
			return
		}
		if uerr != nil || env.GetCommand() == nil {
			t.Fatalf("%x: the log accepts an envelope protobuf reads as %v, %v", b, &env, uerr)
		}
		if h != ph {
			t.Fatalf("%x: validate reads %+v, peek %+v", b, h, ph)
		}
	})
}
