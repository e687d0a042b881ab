package release

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// roles are the release's roles: one unit deploy/systemd/akutan-ROLE.service
// and one example deploy/env/ROLE.env each.
var roles = []string{"log", "view", "api", "truncator", "pruner"}

// repoRoot is the module's root, two levels up from this package.
var repoRoot = func() string {
	abs, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return abs
}()

const unitBinDir = "/usr/local/bin/"

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds every binary of services/ once per test run and returns
// their directory.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "akutan-release-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+string(filepath.Separator), "./services/...")
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./services/...: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// unit is the [Service] section of a systemd unit: each key's values in
// order.
type unit map[string][]string

func readUnit(t *testing.T, role string) unit {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "systemd", "akutan-"+role+".service"))
	if err != nil {
		t.Fatalf("role %s has no unit in the release: %v", role, err)
	}
	u := unit{}
	section := ""
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("akutan-%s.service: bad line %q", role, line)
			}
			u[k] = append(u[k], v)
		}
	}
	return u
}

// command is the unit's ExecStart with the binary in dir.
func (u unit) command(t *testing.T, dir string) []string {
	t.Helper()
	if len(u["ExecStart"]) != 1 {
		t.Fatalf("want one ExecStart, have %q", u["ExecStart"])
	}
	args := strings.Fields(u["ExecStart"][0])
	if !strings.HasPrefix(args[0], unitBinDir) {
		t.Fatalf("ExecStart %q does not run a binary of %s", u["ExecStart"][0], unitBinDir)
	}
	args[0] = filepath.Join(dir, strings.TrimPrefix(args[0], unitBinDir))
	return args
}

// parseEnv parses an environment file as systemd's EnvironmentFile reads
// the subset the release uses: NAME=VALUE lines, # comments, blank lines.
func parseEnv(text string) (map[string]string, error) {
	env := map[string]string{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" || strings.ContainsAny(v, `"'\`) {
			return nil, fmt.Errorf("line %d: want NAME=VALUE without quotes or backslashes, have %q", i+1, line)
		}
		if _, dup := env[k]; dup {
			return nil, fmt.Errorf("line %d: %s twice", i+1, k)
		}
		env[k] = v
	}
	return env, nil
}

var (
	goFlag    = regexp.MustCompile(`(?m)^\s+-([a-z0-9-]+)`)
	cobraFlag = regexp.MustCompile(`\[\$(AKUTAN_[A-Z0-9_]+)\]`)
)

// envNames are the AKUTAN_ names the command a role's unit runs reads:
// the servers' flags from their --help, the CLI's from the [$AKUTAN_X]
// marks of its subcommand's --help.
func envNames(t *testing.T, role string, args []string) map[string]bool {
	t.Helper()
	out, _ := exec.Command(args[0], append(args[1:], "--help")...).CombinedOutput()
	names := map[string]bool{}
	if filepath.Base(args[0]) == "akutan" {
		for _, m := range cobraFlag.FindAllStringSubmatch(string(out), -1) {
			names[m[1]] = true
		}
	} else {
		for _, m := range goFlag.FindAllStringSubmatch(string(out), -1) {
			names["AKUTAN_"+strings.ToUpper(strings.ReplaceAll(m[1], "-", "_"))] = true
		}
	}
	if len(names) < 3 {
		t.Fatalf("%s: found only %d flags in %q --help:\n%s", role, len(names), args, out)
	}
	return names
}

// checkEnv reports every AKUTAN_ name of env that is not a flag of the
// role's command, and for the servers whether --print-config accepts the
// values.
func checkEnv(t *testing.T, what, role string, env map[string]string, bins string) {
	t.Helper()
	args := readUnit(t, role).command(t, bins)
	names := envNames(t, role, args)
	for _, k := range sortedKeys(env) {
		if !strings.HasPrefix(k, "AKUTAN_") {
			t.Errorf("%s: %s is not an AKUTAN_ name", what, k)
		} else if !names[k] {
			t.Errorf("%s: %s is no flag of %s (role %s)", what, k, strings.Join(args, " "), role)
		}
	}
	if filepath.Base(args[0]) == "akutan" {
		return
	}
	cmd := exec.Command(args[0], "--print-config")
	cmd.Env = environ(env, t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s: %s --print-config with this environment: %v\n%s", what, args[0], err, out)
	}
}

// environ is what systemd gives a unit: a PATH, a HOME, and the env file.
func environ(env map[string]string, home string) []string {
	out := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + home}
	for _, k := range sortedKeys(env) {
		out = append(out, k+"="+env[k])
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestUnitsAreHardenedAndReadTheirEnvFile(t *testing.T) {
	want := map[string]string{
		"User":            "akutan",
		"NoNewPrivileges": "yes",
		"ProtectSystem":   "strict",
		"Restart":         "on-failure",
		"LimitNOFILE":     "1048576",
	}
	for _, role := range roles {
		u := readUnit(t, role)
		if got := u["EnvironmentFile"]; len(got) != 1 || got[0] != "/etc/akutan/"+role+".env" {
			t.Errorf("akutan-%s.service: EnvironmentFile %q, want /etc/akutan/%s.env", role, got, role)
		}
		for k, v := range want {
			if got := u[k]; len(got) != 1 || got[0] != v {
				t.Errorf("akutan-%s.service: %s=%q, want %s", role, k, got, v)
			}
		}
		// Roles with data write only their state directory.
		if role == "log" || role == "view" {
			if got := u["ReadWritePaths"]; len(got) != 1 || got[0] != "/var/lib/akutan" {
				t.Errorf("akutan-%s.service: ReadWritePaths %q, want /var/lib/akutan", role, got)
			}
			if got := u["StateDirectory"]; len(got) != 1 || got[0] != "akutan" {
				t.Errorf("akutan-%s.service: StateDirectory %q, want akutan", role, got)
			}
		}
	}
}

func TestEnvExamplesAreFlags(t *testing.T) {
	bins := binaries(t)
	for _, role := range roles {
		data, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "env", role+".env"))
		if err != nil {
			t.Errorf("role %s has no example env file: %v", role, err)
			continue
		}
		env, err := parseEnv(string(data))
		if err != nil {
			t.Errorf("deploy/env/%s.env: %v", role, err)
			continue
		}
		checkEnv(t, "deploy/env/"+role+".env", role, env, bins)
	}
}

// rendered is what terraform/modules/server-config outputs.
type rendered struct {
	Env      map[string]string
	UserData map[string]string
	Roles    map[string]string
}

// render applies terraform/modules/server-config with the given module
// arguments (HCL) through .tools/bin/terraform, offline: the module uses
// no provider.
func render(t *testing.T, args string) rendered {
	t.Helper()
	tf := filepath.Join(repoRoot, ".tools", "bin", "terraform")
	if _, err := os.Stat(tf); err != nil {
		t.Skipf("no %s (bash terraform/check.sh builds it): cannot render the Terraform templates", tf)
	}
	dir := t.TempDir()
	src, err := filepath.Rel(dir, filepath.Join(repoRoot, "terraform", "modules", "server-config"))
	if err != nil {
		t.Fatal(err)
	}
	main := fmt.Sprintf(`module "cfg" {
  source = %q
%s
}
output "env" { value = module.cfg.env }
output "user_data" { value = module.cfg.user_data }
output "roles" { value = module.cfg.roles }
`, filepath.ToSlash(src), args)
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1", "PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	run := func(args ...string) []byte {
		cmd := exec.Command(tf, args...)
		cmd.Dir, cmd.Env = dir, env
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("terraform %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
		}
		return out
	}
	run("init", "-input=false", "-no-color")
	run("apply", "-auto-approve", "-input=false", "-no-color")
	var outs struct {
		Env      struct{ Value map[string]string }
		UserData struct{ Value map[string]string } `json:"user_data"`
		Roles    struct{ Value map[string]string }
	}
	if err := json.Unmarshal(run("output", "-json"), &outs); err != nil {
		t.Fatal(err)
	}
	return rendered{Env: outs.Env.Value, UserData: outs.UserData.Value, Roles: outs.Roles.Value}
}

// envFromUserData is the env file that user data writes for role (the
// heredoc cat > /etc/akutan/ROLE.env <<'ENV' ... ENV).
func envFromUserData(userData, role string) (string, error) {
	start := "cat > /etc/akutan/" + role + ".env <<'ENV'\n"
	i := strings.Index(userData, start)
	if i < 0 {
		return "", fmt.Errorf("no %q", strings.TrimSpace(start))
	}
	rest := userData[i+len(start):]
	j := strings.Index(rest, "\nENV\n")
	if j < 0 {
		return "", fmt.Errorf("unterminated env heredoc")
	}
	return rest[:j+1], nil
}

// cluster are the loopback addresses of the test's cluster.
type cluster struct {
	logIDs          []string
	raft, grpc      []string
	views           map[string]string // partition key -> gRPC address
	api             string
	store, dataRoot string
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// moduleArgs are the module arguments of the loopback cluster: the same
// variables the region module sets, with loopback addresses.
func (c *cluster) moduleArgs() string {
	var peers []string
	for i, id := range c.logIDs {
		peers = append(peers, fmt.Sprintf(`{ id = %q, raft_addr = %q, grpc_addr = %q }`, id, c.raft[i], c.grpc[i]))
	}
	var dns []string
	for _, k := range sortedKeys(c.views) {
		dns = append(dns, fmt.Sprintf("%q", c.views[k]))
	}
	q := func(ss []string) string {
		var out []string
		for _, s := range ss {
			out = append(out, fmt.Sprintf("%q", s))
		}
		return "[" + strings.Join(out, ", ") + "]"
	}
	return fmt.Sprintf(`
  cluster           = "dc1"
  store_url         = %q
  log_peers         = [%s]
  local_log_ids     = %s
  log_clients       = %s
  view_ranges = {
    "hashsp-0" = { space = "HashSP", start = "0x0000000000000000", end = "0x10000000000000000" }
    "hashpo-0" = { space = "HashPO", start = "0x0000000000000000", end = "0x10000000000000000" }
  }
  views_dns           = [%s]
  listen              = { view_grpc = "0.0.0.0:7002", api_grpc = %q, http = "0.0.0.0:9090" }
  checkpoint_interval = "20s"
  critical_clusters   = ["dc1"]
  daemons = {
    truncate_every = "5s"
    truncate_delay = "0s"
    prune_every    = "10s"
    prune_keep     = 2
    prune_grace    = "1h"
  }
  release = { bucket = "", version = "test" }
`, c.store, strings.Join(peers, ", "), q(c.logIDs), q(c.grpc), strings.Join(dns, ", "), c.api)
}

// proc is one started server or daemon.
type proc struct {
	key  string
	cmd  *exec.Cmd
	log  string
	http string // its /readyz host:port; empty for the daemons
	done chan error
}

func (p *proc) tail() string {
	data, _ := os.ReadFile(p.log)
	if len(data) > 3000 {
		data = data[len(data)-3000:]
	}
	return string(data)
}

func TestRenderedEnvAndUserData(t *testing.T) {
	c := loopback(t)
	r := render(t, c.moduleArgs())
	bins := binaries(t)
	seen := map[string]bool{}
	for _, k := range sortedKeys(r.Env) {
		role := r.Roles[k]
		seen[role] = true
		env, err := parseEnv(r.Env[k])
		if err != nil {
			t.Errorf("%s: rendered env: %v", k, err)
			continue
		}
		fromUD, err := envFromUserData(r.UserData[k], role)
		if err != nil {
			t.Errorf("%s: user data: %v", k, err)
		} else if fromUD != r.Env[k] {
			t.Errorf("%s: the user data writes\n%s\nnot the env output\n%s", k, fromUD, r.Env[k])
		}
		if !strings.Contains(r.UserData[k], "systemctl enable --now akutan-"+role+".service") {
			t.Errorf("%s: the user data does not start akutan-%s.service", k, role)
		}
		checkEnv(t, "rendered "+k, role, env, bins)
	}
	for _, role := range roles {
		if !seen[role] {
			t.Errorf("the module renders no %s", role)
		}
	}
}

func loopback(t *testing.T) *cluster {
	dir := t.TempDir()
	c := &cluster{
		logIDs:   []string{"log1", "log2", "log3"},
		views:    map[string]string{"hashsp-0": freePort(t), "hashpo-0": freePort(t)},
		api:      freePort(t),
		store:    filepath.Join(dir, "bucket"),
		dataRoot: dir,
	}
	for range c.logIDs {
		c.raft = append(c.raft, freePort(t))
		c.grpc = append(c.grpc, freePort(t))
	}
	return c
}

// TestRenderAndBoot starts what Terraform would start, here: every
// rendered env file under its role's unit's ExecStart, on 127.0.0.1.
func TestRenderAndBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts a cluster of real processes")
	}
	start := time.Now()
	c := loopback(t)
	r := render(t, c.moduleArgs())
	bins := binaries(t)
	t.Logf("rendered and built in %v", time.Since(start).Round(time.Millisecond))
	booted := time.Now()
	if err := os.MkdirAll(c.store, 0o755); err != nil {
		t.Fatal(err)
	}

	var procs []*proc
	t.Cleanup(func() {
		for _, p := range procs {
			p.cmd.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				p.cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() {
			for _, p := range procs {
				t.Logf("--- %s (%s):\n%s", p.key, strings.Join(p.cmd.Args, " "), p.tail())
			}
		}
	})
	launch := func(key string) *proc {
		role := r.Roles[key]
		env, err := parseEnv(r.Env[key])
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		// What one host cannot share: the data dir, the HTTP port, and a
		// view's gRPC port (the cloud gives each instance its own address).
		p := &proc{key: key, done: make(chan error, 1)}
		name := strings.ReplaceAll(key, "/", "-")
		if _, ok := env["AKUTAN_DATA_DIR"]; ok {
			env["AKUTAN_DATA_DIR"] = filepath.Join(c.dataRoot, name)
		}
		if _, ok := env["AKUTAN_HTTP_ADDR"]; ok {
			p.http = freePort(t)
			env["AKUTAN_HTTP_ADDR"] = p.http
		}
		if role == "view" {
			env["AKUTAN_LISTEN"] = c.views[strings.TrimPrefix(key, "view/")]
		}
		args := readUnit(t, role).command(t, bins)
		p.log = filepath.Join(c.dataRoot, name+".log")
		f, err := os.Create(p.log)
		if err != nil {
			t.Fatal(err)
		}
		p.cmd = exec.Command(args[0], args[1:]...)
		p.cmd.Env = environ(env, c.dataRoot)
		p.cmd.Stdout, p.cmd.Stderr = f, f
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		go func() { p.done <- p.cmd.Wait(); f.Close() }()
		procs = append(procs, p)
		return p
	}

	// The servers, then, once they are ready, the daemons.
	var servers []*proc
	for _, k := range sortedKeys(r.Roles) {
		if role := r.Roles[k]; role == "log" || role == "view" || role == "api" {
			servers = append(servers, launch(k))
		}
	}
	for _, p := range servers {
		waitReady(t, p, 90*time.Second)
	}
	t.Logf("all %d servers ready %v after they started", len(servers), time.Since(booted).Round(time.Millisecond))
	daemons := []*proc{launch("truncator"), launch("pruner")}

	cli := func(stdin string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(bins, "akutan"), args...)
		cmd.Env = environ(map[string]string{"AKUTAN_API": c.api, "AKUTAN_QUIET": "true"}, c.dataRoot)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("akutan %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	cli("<alice> <knows> <bob>\n", "insert", "-")
	if out := cli("", "lookup", "<alice>", "<knows>"); !strings.Contains(out, "<bob>") {
		t.Errorf("lookup <alice> <knows> through the API: %q, want <bob>", out)
	}
	if out := cli("", "lookup", "_", "<knows>", "<bob>"); !strings.Contains(out, "<alice>") {
		t.Errorf("lookup _ <knows> <bob> (HashPO) through the API: %q, want <alice>", out)
	}

	// The daemons run on (a unit would restart one that failed; here that
	// is a failure).
	time.Sleep(6 * time.Second)
	for _, p := range daemons {
		select {
		case err := <-p.done:
			p.done <- err
			t.Errorf("%s exited: %v\n%s", p.key, err, p.tail())
		default:
		}
	}
	t.Logf("render, boot, write and lookup took %v", time.Since(start).Round(time.Millisecond))
}

// waitReady waits until p's /readyz answers 200.
func waitReady(t *testing.T, p *proc, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("%s exited before it was ready: %v\n%s", p.key, err, p.tail())
		default:
		}
		resp, err := client.Get("http://" + p.http + "/readyz")
		if err == nil {
			body := new(bytes.Buffer)
			body.ReadFrom(bufio.NewReader(resp.Body))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(body.String()))
		} else {
			last = err.Error()
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s not ready after %v: %s", p.key, timeout, last)
}
