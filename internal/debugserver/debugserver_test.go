package debugserver

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestServesProfiles(t *testing.T) {
	s, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile") {
		t.Fatalf("goroutine profile: %d %.200s", code, body)
	}
	if code, _ := get("/debug/vars"); code != 404 {
		t.Fatalf("/debug/vars: %d, want 404 (only pprof is served)", code)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Start(s.Addr())
	if err != nil {
		t.Fatalf("address not released after Close: %v", err)
	}
	_ = again.Close()
}
