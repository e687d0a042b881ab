package apisvc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/akutan/akutan/proto/apipb"
)

// readyState is the last readiness evaluation.
type readyState struct {
	mu      sync.Mutex
	at      time.Time
	fully   *apipb.Verdict
	healthy *apipb.Verdict
}

// Ready evaluates the cluster now, as Status does (the log, every view,
// the API servers, judged by infra/health), records the verdicts, reports
// them to Config.Verdicts, and returns nil when the cluster is fully
// available, else what is missing. It costs a Status call: the lifecycle
// calls it from its readiness loop (about every second) and caches the
// answer for /readyz and the gRPC health service.
func (s *Server) Ready(ctx context.Context) error {
	resp, err := s.Status(ctx, &apipb.StatusRequest{})
	if err != nil {
		return fmt.Errorf("cluster status: %w", err)
	}
	s.ready.mu.Lock()
	s.ready.at, s.ready.fully, s.ready.healthy = time.Now(), resp.FullyAvailable, resp.Healthy
	s.ready.mu.Unlock()
	if s.cfg.Verdicts != nil {
		s.cfg.Verdicts(resp.FullyAvailable.GetOk(), resp.Healthy.GetOk())
	}
	if !resp.FullyAvailable.GetOk() {
		missing := resp.FullyAvailable.GetMissing()
		if len(missing) == 0 {
			return errors.New("the cluster is not fully available")
		}
		return fmt.Errorf("the cluster is not fully available: %s", strings.Join(missing, "; "))
	}
	return nil
}

// LastVerdicts returns the verdicts of the last Ready evaluation and when
// it ran; nil verdicts before the first.
func (s *Server) LastVerdicts() (fully, healthy *apipb.Verdict, at time.Time) {
	s.ready.mu.Lock()
	defer s.ready.mu.Unlock()
	return s.ready.fully, s.ready.healthy, s.ready.at
}
