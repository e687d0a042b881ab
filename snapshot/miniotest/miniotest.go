// Package miniotest starts a real MinIO server for tests: on a free
// 127.0.0.1 port, with a temporary data directory and a bucket, killed when
// the test ends.
//
// The server binary is <repo root>/.tools/bin/minio (or $AKUTAN_MINIO). If
// it is missing, Start builds it from the Go module proxy, holding an flock
// on <repo root>/.tools/minio.lock so that test packages running in
// parallel build it once; the first build takes a few minutes.
//
// Usage:
//
//	srv := miniotest.Start(t)
//	store := srv.Store(t, "my-test") // a *s3store.Store under prefix my-test/
//	srv.Stop()                       // MinIO is down (SIGKILL) ...
//	srv.Restart()                    // ... and back, same port and data
package miniotest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/akutan/akutan/snapshot/s3store"
)

// MinIOModule is the MinIO version the tests and the local stack run.
const MinIOModule = "github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"

const modulePath = "github.com/akutan/akutan"

// KMSKeyName is the name of the server's built-in KMS key, so tests can use
// SSE "AES256" and "aws:kms" (with this key id or none).
const KMSKeyName = "miniotest-key"

// Server is a running (or stopped) MinIO server.
type Server struct {
	Endpoint  string // http://127.0.0.1:port
	AccessKey string
	SecretKey string
	Region    string
	Bucket    string // created by Start
	DataDir   string

	t       testing.TB
	bin     string
	addr    string
	console string
	kmsKey  string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd exits
}

// Start starts a MinIO server for the test and creates its bucket. The
// server is killed when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	var key [32]byte
	_, _ = rand.Read(key[:])
	s := &Server{
		AccessKey: "akutan-test",
		SecretKey: "akutan-test-secret",
		Region:    "us-east-1",
		Bucket:    "akutan-test",
		DataDir:   filepath.Join(dir, "data"),
		t:         t,
		bin:       bin,
		kmsKey:    KMSKeyName + ":" + base64.StdEncoding.EncodeToString(key[:]),
		logPath:   filepath.Join(dir, "minio.log"),
	}
	if err := os.MkdirAll(filepath.Join(dir, "certs"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.kill)
	// Another process may take the free port between our probe and
	// MinIO's bind; try a few ports.
	var err error
	for try := 0; try < 5; try++ {
		s.addr, s.console = freePort(t), freePort(t)
		s.Endpoint = "http://" + s.addr
		if err = s.start(); err == nil {
			break
		}
		s.kill()
	}
	if err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Store(t, "").EnsureBucket(ctx); err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	return s
}

// Config is the S3 configuration of a store on the server's bucket under
// prefix ("" for none).
func (s *Server) Config(prefix string) s3store.Config {
	cfg := s3store.DefaultConfig()
	cfg.Endpoint = s.Endpoint
	cfg.Region = s.Region
	cfg.Bucket = s.Bucket
	cfg.Prefix = prefix
	cfg.AccessKey = s.AccessKey
	cfg.SecretKey = s.SecretKey
	cfg.PathStyle = true
	return cfg
}

// Store returns a store on the server's bucket under prefix ("" for none).
func (s *Server) Store(t testing.TB, prefix string) *s3store.Store {
	t.Helper()
	st, err := s3store.New(context.Background(), s.Config(prefix))
	if err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	return st
}

// URL is the store's location for snapshot.OpenStore. Credentials are not
// part of it; Env has them.
func (s *Server) URL(prefix string) string {
	q := url.Values{"endpoint": {s.Endpoint}, "region": {s.Region}, "path_style": {"true"}}
	return fmt.Sprintf("s3://%s/%s?%s", s.Bucket, prefix, q.Encode())
}

// Env is the environment a process needs to reach the server through the
// standard credential chain: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
// AWS_REGION.
func (s *Server) Env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.SecretKey,
		"AWS_REGION=" + s.Region,
	}
}

// Stop kills the server (SIGKILL, as in a crash) and waits for it to exit.
// Requests fail until Restart.
func (s *Server) Stop() {
	s.t.Helper()
	s.kill()
}

// Restart starts a stopped server again on the same port and data
// directory, and waits until it is ready.
func (s *Server) Restart() {
	s.t.Helper()
	s.kill()
	var err error
	for try := 0; try < 20; try++ {
		// The port may be briefly unavailable after the kill.
		if err = s.start(); err == nil {
			return
		}
		s.kill()
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("miniotest: restart: %v", err)
}

// Logs returns the server's output so far.
func (s *Server) Logs() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}

func (s *Server) start() error {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(s.bin, "server",
		"--address", s.addr,
		"--console-address", s.console,
		"--certs-dir", filepath.Join(filepath.Dir(s.DataDir), "certs"),
		"--quiet",
		s.DataDir)
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_KMS_SECRET_KEY="+s.kmsKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_REGION="+s.Region,
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Die with the test binary, even if it crashes.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-done:
			return fmt.Errorf("minio exited: %s\n%s", cmd.ProcessState, tail(s.Logs()))
		default:
		}
		resp, err := client.Get(s.Endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("minio at %s not ready after 30s\n%s", s.addr, tail(s.Logs()))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// kill stops the server if it runs.
func (s *Server) kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

func tail(s string) string {
	if len(s) > 4000 {
		s = s[len(s)-4000:]
	}
	return s
}

func freePort(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary returns the MinIO server binary's path, building it first if it
// is missing.
func Binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() { binPath, binErr = binary() })
	if binErr != nil {
		t.Fatalf("miniotest: %v", binErr)
	}
	return binPath
}

func binary() (string, error) {
	if p := os.Getenv("AKUTAN_MINIO"); p != "" {
		return p, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	tools := filepath.Join(root, ".tools")
	bin := filepath.Join(tools, "bin", "minio")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Join(tools, "bin"), 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(tools, "minio.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // another process built it while we waited
	}
	cmd := exec.Command("go", "install", MinIOModule)
	cmd.Dir = os.TempDir() // outside any module
	cmd.Env = append(os.Environ(), "GOBIN="+filepath.Join(tools, "bin"), "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("build minio (%s): %v\n%s", MinIOModule, err, tail(string(out)))
	}
	return bin, nil
}

// RepoRoot finds the repository's root: the nearest directory at or above
// the working directory whose go.mod declares module
// github.com/akutan/akutan.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if f, err := os.Open(filepath.Join(dir, "go.mod")); err == nil {
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				line := strings.TrimSpace(sc.Text())
				if rest, ok := strings.CutPrefix(line, "module"); ok &&
					strings.Trim(strings.TrimSpace(rest), `"`) == modulePath {
					f.Close()
					return dir, nil
				}
			}
			f.Close()
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod of module " + modulePath + " above the working directory")
		}
		dir = parent
	}
}
