package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/akutan/akutan/proto/apipb"
	"github.com/akutan/akutan/proto/entrypb"
)

// runCLI runs one command line in-process with the given environment only.
func runCLI(t *testing.T, env map[string]string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	if env == nil {
		env = map[string]string{}
	}
	if _, ok := env["HOME"]; !ok {
		env["HOME"] = t.TempDir() // no user config file leaks in
	}
	code = run(context.Background(), args, strings.NewReader(stdin), &out, &errOut, func(k string) string { return env[k] })
	return out.String(), errOut.String(), code
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

type shown struct {
	Context string            `json:"context"`
	API     []string          `json:"api"`
	Log     []string          `json:"log"`
	Store   string            `json:"store"`
	Sources map[string]string `json:"sources"`
}

func show(t *testing.T, env map[string]string, args ...string) shown {
	t.Helper()
	out, errOut, code := runCLI(t, env, "", append([]string{"context", "show", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("context show %v: exit %d: %s", args, code, errOut)
	}
	var s shown
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return s
}

const twoContexts = `current-context: prod
contexts:
  prod:
    api: [p1:1, p2:2]
    log: p3:3,p4:4
    store: s3://prod/db
  staging:
    api: [s1:1]
`

// The documented order: flag > environment > config file > the local
// stack's defaults, per setting.
func TestPrecedence(t *testing.T) {
	cfg := writeConfig(t, twoContexts)
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want shown
	}{
		{"defaults", nil, nil, shown{
			API: defaultAPI, Log: defaultLog, Store: defaultStore,
			Sources: map[string]string{"api": "default", "log": "default", "store": "default"}}},
		{"config file's current context", map[string]string{"AKUTAN_CONFIG": cfg}, nil, shown{Context: "prod",
			API: []string{"p1:1", "p2:2"}, Log: []string{"p3:3", "p4:4"}, Store: "s3://prod/db",
			Sources: map[string]string{"api": "config:prod", "log": "config:prod", "store": "config:prod"}}},
		{"--context picks another; what it lacks stays default", nil, []string{"--config", cfg, "--context", "staging"}, shown{Context: "staging",
			API: []string{"s1:1"}, Log: defaultLog, Store: defaultStore,
			Sources: map[string]string{"api": "config:staging", "log": "default", "store": "default"}}},
		{"AKUTAN_CONTEXT", map[string]string{"AKUTAN_CONTEXT": "staging"}, []string{"--config", cfg}, shown{Context: "staging",
			API: []string{"s1:1"}, Log: defaultLog, Store: defaultStore,
			Sources: map[string]string{"api": "config:staging", "log": "default", "store": "default"}}},
		{"env beats the file", map[string]string{"AKUTAN_CONFIG": cfg, "AKUTAN_API": "e1:1,e2:2", "AKUTAN_STORE": "/tmp/envstore"}, nil, shown{Context: "prod",
			API: []string{"e1:1", "e2:2"}, Log: []string{"p3:3", "p4:4"}, Store: "/tmp/envstore",
			Sources: map[string]string{"api": "env", "log": "config:prod", "store": "env"}}},
		{"flags beat env and file; lists repeat or use commas", map[string]string{"AKUTAN_CONFIG": cfg, "AKUTAN_API": "e1:1", "AKUTAN_LOG": "el:1"},
			[]string{"--api", "f1:1,f2:2", "--api", "f3:3", "--store", "/tmp/flagstore"}, shown{Context: "prod",
				API: []string{"f1:1", "f2:2", "f3:3"}, Log: []string{"el:1"}, Store: "/tmp/flagstore",
				Sources: map[string]string{"api": "flag", "log": "env", "store": "flag"}}},
		{"XDG_CONFIG_HOME holds the default file", map[string]string{"XDG_CONFIG_HOME": filepath.Dir(filepath.Dir(xdgConfig(t)))}, nil, shown{Context: "prod",
			API: []string{"x:1"}, Log: defaultLog, Store: defaultStore,
			Sources: map[string]string{"api": "config:prod", "log": "default", "store": "default"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := show(t, c.env, c.args...); !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

// xdgConfig writes $XDG_CONFIG_HOME/akutan/config.yaml and returns its path.
func xdgConfig(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "xdg", "akutan")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte("current-context: prod\ncontexts:\n  prod:\n    api: [x:1]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Every flag, not only the global ones, reads its AKUTAN_* variable, and a
// flag still wins.
func TestEnvForCommandFlags(t *testing.T) {
	srv := newFakeAPI(t)
	_, errOut, code := runCLI(t, map[string]string{"AKUTAN_BATCH": "0"}, "<a> <b> <c>\n", "insert", "--api", srv.addr)
	if code != exitUsage || !strings.Contains(errOut, "--batch must be positive") {
		t.Fatalf("AKUTAN_BATCH=0: exit %d: %s", code, errOut)
	}
	_, _, code = runCLI(t, map[string]string{"AKUTAN_BATCH": "0"}, "<a> <b> <c>\n", "insert", "--api", srv.addr, "--batch", "5")
	if code != 0 {
		t.Fatalf("--batch 5 over AKUTAN_BATCH=0: exit %d", code)
	}
	_, errOut, code = runCLI(t, map[string]string{"AKUTAN_INDEX": "many"}, "", "lookup", "--api", srv.addr, "<a>")
	if code != exitUsage || !strings.Contains(errOut, "AKUTAN_INDEX") {
		t.Fatalf("bad AKUTAN_INDEX: exit %d: %s", code, errOut)
	}
	out, _, code := runCLI(t, map[string]string{"AKUTAN_JSON": "true", "AKUTAN_API": srv.addr}, "", "lookup", "<a>")
	if code != 0 || !strings.HasPrefix(out, "{") {
		t.Fatalf("AKUTAN_JSON: exit %d: %s", code, out)
	}
}

func TestConfigErrors(t *testing.T) {
	cfg := writeConfig(t, twoContexts)
	for _, c := range []struct {
		args []string
		env  map[string]string
		code int
		want string
	}{
		{[]string{"--config", cfg, "--context", "nope"}, nil, exitUsage, `no context "nope"`},
		{[]string{"--config", filepath.Join(t.TempDir(), "missing.yaml")}, nil, exitFailed, "no such file"},
		{nil, map[string]string{"AKUTAN_CONFIG": writeConfig(t, "current-context: gone\n")}, exitFailed, `current-context "gone"`},
		{nil, map[string]string{"AKUTAN_CONFIG": writeConfig(t, "version: 9\n")}, exitFailed, "version 9"},
		{nil, map[string]string{"AKUTAN_CONFIG": writeConfig(t, "contexts: [\n")}, exitFailed, "config file"},
	} {
		_, errOut, code := runCLI(t, c.env, "", append([]string{"context", "show"}, c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v %v: exit %d: %s; want exit %d and %q", c.args, c.env, code, errOut, c.code, c.want)
		}
	}
}

func TestContextUseAndList(t *testing.T) {
	cfg := writeConfig(t, "# keep me\n"+twoContexts)
	env := map[string]string{"AKUTAN_CONFIG": cfg}
	if _, errOut, code := runCLI(t, env, "", "context", "use", "staging"); code != 0 {
		t.Fatalf("use: exit %d: %s", code, errOut)
	}
	b, _ := os.ReadFile(cfg)
	if !strings.Contains(string(b), "# keep me") || !strings.Contains(string(b), "current-context: staging") {
		t.Fatalf("file after use:\n%s", b)
	}
	if got := show(t, env); got.Context != "staging" || got.API[0] != "s1:1" {
		t.Fatalf("after use: %+v", got)
	}
	out, _, code := runCLI(t, env, "", "context", "list", "--json")
	var l struct {
		Current  string                `json:"current_context"`
		Contexts map[string]contextCfg `json:"contexts"`
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil || code != 0 || l.Current != "staging" || len(l.Contexts) != 2 || l.Contexts["prod"].Store != "s3://prod/db" {
		t.Fatalf("list: exit %d, %v: %s", code, err, out)
	}
	if _, _, code := runCLI(t, env, "", "context", "use", "nope"); code != exitUsage {
		t.Fatalf("use of an unknown context: exit %d", code)
	}
}

func TestHelpVersionCompletionAndUsage(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"backup", "--help"}, {"log", "--help"}, {"context", "--help"}, {"log", "info", "--help"},
		{"version"}, {"--version"}, {"completion", "bash"}, {"completion", "zsh"}} {
		out, errOut, code := runCLI(t, nil, "", args...)
		if code != 0 || out == "" {
			t.Errorf("%v: exit %d: %s%s", args, code, out, errOut)
		}
	}
	out, _, _ := runCLI(t, nil, "", "--help")
	for _, want := range []string{"Exit codes:", "AKUTAN_", "current-context", "[$AKUTAN_API]"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	for _, args := range [][]string{{}, {"bogus"}, {"backup"}, {"backup", "bogus"}, {"log", "remove"}, {"lookup"},
		{"status", "extra"}, {"insert", "--nope"}, {"lookup", "--index", "1", "--latest", "<a>"}, {"lookup", "_", "<p>"}} {
		if _, errOut, code := runCLI(t, nil, "", args...); code != exitUsage {
			t.Errorf("%v: exit %d, want 2: %s", args, code, errOut)
		}
	}
}

func TestMixedArgs(t *testing.T) {
	root := (&app{getenv: func(string) string { return "" }}).rootCmd()
	for _, c := range []struct{ in, want string }{
		{"lookup _ <age> > -5 --index 3", "lookup --index 3 -- _ <age> > -5"},
		{"--api a:1 lookup --json <alice> <knows>", "--api a:1 lookup --json -- <alice> <knows>"},
		{"lookup -q _ <p> between -2 -1 --api=a:1", "lookup -q --api=a:1 -- _ <p> between -2 -1"},
		{"status --json", "status --json"},
	} {
		if got := strings.Join(mixedArgs(root, strings.Fields(c.in)), " "); got != c.want {
			t.Errorf("%q -> %q, want %q", c.in, got, c.want)
		}
	}
}

// fakeAPI is an in-process API server whose answers a test sets.
type fakeAPI struct {
	apipb.UnimplementedAkutanServer
	addr     string
	writes   atomic.Int32
	lookups  atomic.Int32
	writeErr error
	readErr  error
	fully    bool
	dc       string
}

func newFakeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAPI{addr: l.Addr().String(), fully: true, dc: "dc1"}
	s := grpc.NewServer()
	apipb.RegisterAkutanServer(s, f)
	go s.Serve(l)
	t.Cleanup(s.Stop)
	return f
}

// deadAddr is an address nobody listens on: connections are refused.
func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (f *fakeAPI) Write(_ context.Context, req *apipb.WriteRequest) (*apipb.WriteResponse, error) {
	f.writes.Add(1)
	if f.writeErr != nil {
		return nil, f.writeErr
	}
	return &apipb.WriteResponse{Index: 1 << 40, Created: map[string]uint64{"alice": 7 << 20, "bob": 7<<20 | 1}}, nil
}

// LookupS answers in two pages of one fact each.
func (f *fakeAPI) LookupS(req *apipb.LookupSRequest, stream grpc.ServerStreamingServer[apipb.LookupResponse]) error {
	f.lookups.Add(1)
	if f.readErr != nil {
		return f.readErr
	}
	fact := func(id uint64, age int64) *apipb.ResultFact {
		return &apipb.ResultFact{Id: id, Index: 8,
			Subject:   &apipb.NamedNode{Id: 1, Name: "alice"},
			Predicate: &apipb.NamedNode{Id: 2, Name: "age"},
			Object:    &apipb.ResultObject{Value: &apipb.ResultObject_Int64{Int64: age}},
		}
	}
	if req.PageToken == "" {
		return stream.Send(&apipb.LookupResponse{Index: 9, Facts: []*apipb.ResultFact{fact(5, 30)}, NextPageToken: "p2"})
	}
	if err := stream.Send(&apipb.LookupResponse{Index: 9}); err != nil {
		return err
	}
	return stream.Send(&apipb.LookupResponse{Index: 9, Facts: []*apipb.ResultFact{fact(6, 31)}})
}

func (f *fakeAPI) Status(context.Context, *apipb.StatusRequest) (*apipb.StatusResponse, error) {
	return &apipb.StatusResponse{
		Log:            &apipb.LogStatus{FirstIndex: 1, LastIndex: 1 << 60, Leader: "log-dc1", Available: true},
		Views:          []*apipb.ViewStatus{{Address: "v:1", Space: "sp", RangeEnd: 0, LastApplied: 1 << 60, Reachable: true, UpToDate: f.fully, State: "SERVING", Dc: f.dc}},
		Dc:             f.dc,
		ApiServers:     []*apipb.ApiServerStatus{{Address: f.addr, Reachable: true}},
		FullyAvailable: &apipb.Verdict{Ok: f.fully, Missing: missing(f.fully)},
		Healthy:        &apipb.Verdict{Ok: false, Missing: []string{"two more views"}},
	}, nil
}

func missing(ok bool) []string {
	if ok {
		return nil
	}
	return []string{"sp [0, 2^64) has no up-to-date view"}
}

func decode(t *testing.T, out string) map[string]any {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	if dec.More() {
		t.Fatalf("more than one JSON document: %q", out)
	}
	return m
}

// JSON: one document, snake_case keys, 64-bit numbers as JSON numbers.
func TestJSONShapes(t *testing.T) {
	srv := newFakeAPI(t)
	out, errOut, code := runCLI(t, nil, "<alice> <knows> <bob>\n", "insert", "--api", srv.addr, "--json")
	if code != 0 {
		t.Fatalf("insert: exit %d: %s", code, errOut)
	}
	m := decode(t, out)
	if m["index"] != json.Number("1099511627776") || m["facts"] != json.Number("1") || m["operation"] != "insert" {
		t.Errorf("insert: %v", m)
	}
	if c, ok := m["created"].(map[string]any); !ok || c["alice"] != json.Number("7340032") || c["bob"] != json.Number("7340033") {
		t.Errorf("insert created: %v", m["created"])
	}

	out, _, code = runCLI(t, nil, "", "lookup", "--api", srv.addr, "--json", "<alice>")
	m = decode(t, out)
	facts, _ := m["facts"].([]any)
	if code != 0 || m["index"] != json.Number("9") || len(facts) != 2 || m["more"] != false {
		t.Fatalf("lookup: exit %d: %v", code, m)
	}
	if f := facts[0].(map[string]any); f["id"] != json.Number("5") || f["since_index"] != json.Number("8") || f["object"] != "30" || f["subject"] != "<alice>" {
		t.Errorf("lookup fact: %v", f)
	}
	if f := facts[1].(map[string]any); f["id"] != json.Number("6") || f["object"] != "31" {
		t.Errorf("lookup fact of the second page: %v", f)
	}
	out, _, code = runCLI(t, nil, "", "lookup", "--api", srv.addr, "--json", "--limit", "1", "<alice>")
	m = decode(t, out)
	if facts, _ := m["facts"].([]any); code != 0 || len(facts) != 1 || m["more"] != true {
		t.Fatalf("lookup --limit 1: exit %d: %v", code, m)
	}

	out, _, code = runCLI(t, nil, "", "status", "--api", srv.addr, "--json")
	m = decode(t, out)
	log, _ := m["log"].(map[string]any)
	dcs, _ := m["dcs"].([]any)
	if code != 0 || log["last_index"] != json.Number("1152921504606846976") || log["available"] != true || len(dcs) != 1 {
		t.Fatalf("status: exit %d: %v", code, m)
	}
	dc := dcs[0].(map[string]any)
	views, _ := dc["views"].([]any)
	if len(views) != 1 || dc["dc"] != "dc1" || dc["answered_by"] != srv.addr {
		t.Fatalf("status dc: %v", dc)
	}
	// The fields issue 14 names for every view, plus the rest.
	if v := views[0].(map[string]any); v["dc"] != "dc1" || v["space"] != "sp" || v["range_start"] != json.Number("0") || v["range_end"] != json.Number("0") ||
		v["applied"] != json.Number("1152921504606846976") || v["state"] != "SERVING" || v["up_to_date"] != true {
		t.Errorf("status view: %v", v)
	}
	if fa := dc["fully_available"].(map[string]any); fa["ok"] != true {
		t.Errorf("fully_available: %v", fa)
	}
	if u, ok := m["unreachable_api_servers"].([]any); !ok || len(u) != 0 {
		t.Errorf("unreachable_api_servers: %v", m["unreachable_api_servers"])
	}
	for k := range m {
		if k != strings.ToLower(k) {
			t.Errorf("key %q is not snake_case", k)
		}
	}
}

func TestStatusExitCodes(t *testing.T) {
	srv := newFakeAPI(t)
	srv.fully = false
	out, _, code := runCLI(t, nil, "", "status", "--api", srv.addr)
	if code != exitProblems || !strings.Contains(out, "fully available: NO") || !strings.Contains(out, "has no up-to-date view") {
		t.Fatalf("not fully available: exit %d\n%s", code, out)
	}
	if _, errOut, code := runCLI(t, nil, "", "status", "--api", deadAddr(t)); code != exitFailed || !strings.Contains(errOut, "no API server answered") {
		t.Fatalf("no server: exit %d: %s", code, errOut)
	}
}

// status judges each datacenter apart, asking one API server of each.
func TestStatusPerDatacenter(t *testing.T) {
	a, b, c := newFakeAPI(t), newFakeAPI(t), newFakeAPI(t)
	b.dc, b.fully = "dc2", false
	out, _, code := runCLI(t, nil, "", "status", "--api", a.addr+","+b.addr+","+c.addr)
	if code != exitProblems || !strings.Contains(out, "dc1: fully available: yes") || !strings.Contains(out, "dc2: fully available: NO") ||
		strings.Count(out, "dc1: fully") != 1 || strings.Contains(out, c.addr) {
		t.Fatalf("two datacenters, one not fully available: exit %d\n%s", code, out)
	}
	if out, _, code := runCLI(t, nil, "", "status", "--api", a.addr+","+c.addr); code != 0 || strings.Count(out, "fully available: yes") != 1 {
		t.Fatalf("one datacenter asked twice: exit %d\n%s", code, out)
	}
}

// Reads and status go to the next server when one is down or Unavailable;
// a write goes on only past servers it never reached.
func TestFailover(t *testing.T) {
	dead := deadAddr(t)
	srv := newFakeAPI(t)
	api := dead + "," + srv.addr
	// status asks every server: the dead one is reported, and exit 3 says
	// not everything could be judged.
	if out, errOut, code := runCLI(t, nil, "", "status", "--api", api); code != exitProblems || !strings.Contains(out, "fully available: yes") ||
		!strings.Contains(out, "did not answer") || !strings.Contains(out, dead) {
		t.Fatalf("status past a dead server: exit %d: %s%s", code, out, errOut)
	}
	if out, errOut, code := runCLI(t, nil, "<a> <b> <c>\n", "insert", "--api", api); code != 0 || !strings.Contains(out, "inserted 1 facts at index") {
		t.Fatalf("insert past a dead server: exit %d: %s%s", code, out, errOut)
	}

	down := newFakeAPI(t)
	down.readErr = status.Error(codes.Unavailable, "views unavailable")
	if out, errOut, code := runCLI(t, nil, "", "lookup", "--api", down.addr+","+srv.addr, "<alice>"); code != 0 || !strings.Contains(out, "<alice> <age> 30") || down.lookups.Load() != 1 {
		t.Fatalf("lookup past an Unavailable server: exit %d: %s%s", code, out, errOut)
	}
}

func TestWriteOutcomeUnknown(t *testing.T) {
	for _, c := range []struct {
		err     error
		unknown bool
	}{
		{status.Error(codes.Unavailable, "connection reset"), true},
		{status.Error(codes.DeadlineExceeded, "too slow"), true},
		{status.Error(codes.Unknown, "append outcome unknown"), true},
		{status.Error(codes.NotFound, "<nobody> names no node"), false},
		{status.Error(codes.InvalidArgument, "bad fact"), false},
	} {
		first, second := newFakeAPI(t), newFakeAPI(t)
		first.writeErr = c.err
		_, errOut, code := runCLI(t, nil, "<a> <b> <c>\n", "insert", "--api", first.addr+","+second.addr)
		if code != exitFailed || strings.Contains(errOut, "outcome unknown") != c.unknown || !strings.Contains(errOut, status.Convert(c.err).Message()) {
			t.Errorf("%v: exit %d: %s", c.err, code, errOut)
		}
		if first.writes.Load() != 1 || second.writes.Load() != 0 {
			t.Errorf("%v: writes %d then %d; a write that reached a server must not be sent again", c.err, first.writes.Load(), second.writes.Load())
		}
	}
}

func TestDescribe(t *testing.T) {
	b, _ := protoMarshal(&entrypb.Envelope{Version: 1, Command: &entrypb.Envelope_Ping{Ping: &entrypb.Ping{Nonce: []byte("n")}}})
	if e := describe(4, b); e.Command != "ping" || e.Index != 4 || !strings.Contains(e.Summary, "ping") {
		t.Errorf("ping: %+v", e)
	}
	if e := describe(5, []byte{0xff, 0xff}); e.Command != "undecodable" {
		t.Errorf("garbage: %+v", e)
	}
}

func protoMarshal(m *entrypb.Envelope) ([]byte, error) { return proto.Marshal(m) }

// Progress bars go only to a terminal: never a "\r" into a pipe or a log.
func TestNoProgressOffTerminal(t *testing.T) {
	srv := newFakeAPI(t)
	out, errOut, code := runCLI(t, nil, "<a> <b> <c>\n<a> <b> <d>\n<a> <b> <e>\n", "insert", "--api", srv.addr, "--batch", "1")
	if code != 0 || strings.Contains(errOut, "\r") || errOut != "" || srv.writes.Load() != 3 || !strings.Contains(out, "inserted 3 facts") {
		t.Fatalf("exit %d, %d writes: %q %q", code, srv.writes.Load(), out, errOut)
	}
}
