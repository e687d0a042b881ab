package apisvc

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/akutan/akutan/proto/apipb"
)

func TestFullyAvailableHandler(t *testing.T) {
	for _, tc := range []struct {
		name     string
		resp     *apipb.StatusResponse
		err      error
		method   string
		code     int
		contains []string
	}{
		{name: "fully available", resp: &apipb.StatusResponse{FullyAvailable: &apipb.Verdict{Ok: true}}, code: 200, contains: []string{"fully available"}},
		{name: "head", method: http.MethodHead, resp: &apipb.StatusResponse{FullyAvailable: &apipb.Verdict{Ok: true}}, code: 200},
		{name: "missing views", resp: &apipb.StatusResponse{FullyAvailable: &apipb.Verdict{Missing: []string{"HashSP [0x0, 0x8000000000000000): no up-to-date view", "log: no leader"}}}, code: 503,
			contains: []string{"not fully available", "HashSP [0x0, 0x8000000000000000): no up-to-date view\n", "log: no leader\n"}},
		{name: "healthy but no fully-available verdict", resp: &apipb.StatusResponse{Healthy: &apipb.Verdict{Ok: true}}, code: 503, contains: []string{"no verdict"}},
		{name: "status fails", err: errors.New("log unreachable"), code: 503, contains: []string{"log unreachable"}},
		{name: "post", method: http.MethodPost, resp: &apipb.StatusResponse{FullyAvailable: &apipb.Verdict{Ok: true}}, code: 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			called := false
			h := FullyAvailableHandler(func(ctx context.Context) (*apipb.StatusResponse, error) {
				called = true
				if _, ok := ctx.Deadline(); !ok {
					t.Error("the status call has no deadline")
				}
				return tc.resp, tc.err
			})
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(method, "/verdict/fully-available", nil))
			if rec.Code != tc.code {
				t.Errorf("code %d, want %d; body %q", rec.Code, tc.code, rec.Body.String())
			}
			for _, want := range tc.contains {
				if !strings.Contains(rec.Body.String(), want) {
					t.Errorf("body %q does not contain %q", rec.Body.String(), want)
				}
			}
			if tc.code != http.StatusMethodNotAllowed && !called {
				t.Error("status was not consulted")
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", got)
			}
		})
	}
}

// A status call that outlives the checker's patience is cut off and
// reported as not available.
func TestFullyAvailableHandlerTimesOut(t *testing.T) {
	h := FullyAvailableHandler(func(ctx context.Context) (*apipb.StatusResponse, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/verdict/fully-available", nil).WithContext(ctx))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "deadline exceeded") {
		t.Errorf("code %d body %q, want 503 and the deadline", rec.Code, rec.Body.String())
	}
}
