package main

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/logsvc/logerr"
	"github.com/akutan/akutan/proto/apipb"
	"github.com/akutan/akutan/proto/entrypb"
	"github.com/akutan/akutan/proto/logpb"
)

// versionFakes are a log and an API server whose reported support the test
// sets; the log records what is appended to it.
type versionFakes struct {
	log *versionFakeLog
	api *versionFakeAPI
}

type versionFakeLog struct {
	logpb.UnimplementedLogServer
	addr string

	mu       sync.Mutex
	version  uint32
	supports map[string]uint32 // member -> its support
	appended [][]byte
}

func (f *versionFakeLog) Info(context.Context, *logpb.InfoRequest) (*logpb.InfoResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in := &logpb.InfoResponse{NodeId: "log-dc1", LeaderId: "log-dc1", LastIndex: 41 + uint64(len(f.appended)), LogVersion: f.version}
	for _, id := range []string{"log-dc1", "log-dc2"} {
		m := &logpb.Member{Id: id, Voter: true, MaxSupportedVersion: f.supports[id]}
		if m.MaxSupportedVersion == 0 {
			m.Error = "unreachable: connection refused"
		}
		in.Members = append(in.Members, m)
	}
	return in, nil
}

func (f *versionFakeLog) Append(_ context.Context, req *logpb.AppendRequest) (*logpb.AppendResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, v := range f.supports {
		if v < 2 {
			return nil, logerr.ToStatus(logerr.New(logerr.ErrVersionRefused, map[string]string{"replicas": id}, "version change to 2 refused: %s supports up to version 1", id))
		}
	}
	f.appended = append(f.appended, req.Entries...)
	return &logpb.AppendResponse{FirstIndex: 41 + uint64(len(f.appended))}, nil
}

type versionFakeAPI struct {
	apipb.UnimplementedAkutanServer
	addr string

	mu       sync.Mutex
	supports uint32
	views    []*apipb.ViewStatus
}

func (f *versionFakeAPI) Status(context.Context, *apipb.StatusRequest) (*apipb.StatusResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &apipb.StatusResponse{Dc: "dc1", MaxSupportedVersion: f.supports, Views: f.views}, nil
}

func serve(t *testing.T, register func(*grpc.Server)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	register(s)
	go s.Serve(l)
	t.Cleanup(s.Stop)
	return l.Addr().String()
}

// newVersionFakes: a log at version 1 and an API server that sees two
// views, one per DC; everything supports version 2 until the test says
// otherwise.
func newVersionFakes(t *testing.T) *versionFakes {
	f := &versionFakes{
		log: &versionFakeLog{version: 1, supports: map[string]uint32{"log-dc1": 2, "log-dc2": 2}},
		api: &versionFakeAPI{supports: 2, views: []*apipb.ViewStatus{
			{Address: "v1:1", Dc: "dc1", Reachable: true, MaxSupportedVersion: 2},
			{Address: "v2:1", Dc: "dc2", Reachable: true, MaxSupportedVersion: 2},
		}},
	}
	f.log.addr = serve(t, func(s *grpc.Server) { logpb.RegisterLogServer(s, f.log) })
	f.api.addr = serve(t, func(s *grpc.Server) { apipb.RegisterAkutanServer(s, f.api) })
	return f
}

func (f *versionFakes) run(t *testing.T, extra ...string) (string, string, int) {
	t.Helper()
	args := append([]string{"log", "set-version", "--log", f.log.addr, "--api", f.api.addr}, extra...)
	return runCLI(t, nil, "", args...)
}

func (f *versionFakes) appended() [][]byte {
	f.log.mu.Lock()
	defer f.log.mu.Unlock()
	return f.log.appended
}

// set-version names every server that does not support the version or
// could not be asked, refuses with exit code 3, and appends nothing.
func TestSetVersionRefused(t *testing.T) {
	f := newVersionFakes(t)
	f.api.views[1].MaxSupportedVersion = 1
	f.api.views = append(f.api.views, &apipb.ViewStatus{Address: "v3:1", Dc: "dc3", Error: "connection refused"})
	f.log.supports["log-dc2"] = 1
	dead := deadAddr(t)
	out, errOut, code := f.run(t, "2", "--yes", "--api", f.api.addr+","+dead)
	if code != exitProblems {
		t.Fatalf("exit %d, want 3\n%s%s", code, out, errOut)
	}
	for _, want := range [][]string{
		{"log version 1, asked to change to 2"},
		{"log ", "log-dc2", "supports only up to version 1"},
		{"view ", "v2:1", "dc2", "supports only up to version 1"},
		{"view ", "v3:1", "dc3", " 0 ", "could not be asked: connection refused"},
		{"api ", dead, "could not be asked"},
		{"refused: not every server supports version 2, so nothing was appended"},
	} {
		if !hasLine(out, want...) {
			t.Errorf("no line with %q:\n%s", want, out)
		}
	}
	if strings.Count(out, f.api.addr) != 1 {
		t.Errorf("the API server, listed twice, is not checked once:\n%s", out)
	}
	if !strings.Contains(errOut, "refused: 4 server(s)") || !strings.Contains(errOut, "log log-dc2, view v2:1 (dc2), view v3:1 (dc3), api "+dead) ||
		strings.Contains(errOut, "v1:1") || strings.Contains(errOut, "log-dc1") {
		t.Errorf("error does not name exactly the four: %s", errOut)
	}
	if n := len(f.appended()); n != 0 {
		t.Fatalf("a refused change appended %d entries", n)
	}

	// The API server's own support counts too, in JSON as well.
	f = newVersionFakes(t)
	f.api.supports = 1
	out, _, code = f.run(t, "2", "--yes", "--json")
	m := decode(t, out)
	if code != exitProblems || m["appended"] != false || len(m["refused"].([]any)) != 1 || m["refused"].([]any)[0] != "api "+f.api.addr+" (dc1)" {
		t.Fatalf("exit %d: %s", code, out)
	}
}

// --dry-run prints the checks and the entry and appends nothing; without
// --yes and a terminal nothing is appended either; with --yes exactly one
// version change, as an entry of the log's version, is appended; once the
// log is at the version, a rerun has nothing to do.
func TestSetVersion(t *testing.T) {
	f := newVersionFakes(t)
	out, errOut, code := f.run(t, "2", "--dry-run")
	if code != 0 || !strings.Contains(out, "dry run: would append a version change to 2, as an entry of version 1; nothing was appended") ||
		!strings.Contains(out, "cannot be undone") {
		t.Fatalf("dry run: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = f.run(t, "2")
	if code != exitUsage || !strings.Contains(errOut, "cannot be undone; run again with --yes") {
		t.Fatalf("without --yes: exit %d\n%s%s", code, out, errOut)
	}
	if n := len(f.appended()); n != 0 {
		t.Fatalf("dry run or unconfirmed change appended %d entries", n)
	}

	out, errOut, code = f.run(t, "2", "--yes", "--json")
	if code != 0 {
		t.Fatalf("set-version: exit %d\n%s%s", code, out, errOut)
	}
	m := decode(t, out)
	if m["appended"] != true || m["index"].(interface{ String() string }).String() != "42" || m["from_version"].(interface{ String() string }).String() != "1" ||
		len(m["checks"].([]any)) != 5 || len(m["refused"].([]any)) != 0 {
		t.Fatalf("set-version --json: %s", out)
	}
	entries := f.appended()
	if len(entries) != 1 {
		t.Fatalf("appended %d entries, want 1", len(entries))
	}
	var env entrypb.Envelope
	if err := proto.Unmarshal(entries[0], &env); err != nil || env.Version != 1 || env.GetVersionChange().GetToVersion() != 2 {
		t.Fatalf("appended %v (%v), want a version change to 2 of version 1", &env, err)
	}

	f.log.mu.Lock()
	f.log.version = 2
	f.log.mu.Unlock()
	if out, _, code := f.run(t, "2", "--yes"); code != 0 || !strings.Contains(out, "already at version 2: nothing to do") || len(f.appended()) != 1 {
		t.Fatalf("rerun: exit %d\n%s", code, out)
	}
	if _, errOut, code := f.run(t, "1", "--yes"); code != exitUsage || !strings.Contains(errOut, "above 1") {
		t.Fatalf("set-version 1: exit %d %s", code, errOut)
	}
}

// hasLine reports whether a line of out holds every part, in order.
func hasLine(out string, parts ...string) bool {
	for _, l := range strings.Split(out, "\n") {
		rest, ok := l, true
		for _, p := range parts {
			i := strings.Index(rest, p)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(p):]
		}
		if ok {
			return true
		}
	}
	return false
}
