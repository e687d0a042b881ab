package apisvc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/akutan/akutan/logsvc/logerr"
)

// logVersionRefresh is how long a learned log version is used before it is
// asked again, in the background.
const logVersionRefresh = 5 * time.Second

// logVersion is what one API server knows of the log version in force, the
// version it writes entries at. Any replica's Info will do, and a stale
// answer is safe: versions only go up, and an entry of an older version
// stays valid (logsvc, doc.go), so a server that has not yet heard of a
// change writes the older version until its next refresh. The other way
// round, a server that learned the new version from a replica before a
// newly elected leader applied the change is refused by that leader; the
// refusal says the leader's version, which the server then takes.
type logVersion struct {
	mu         sync.Mutex
	version    uint32 // 0: not known yet
	checked    time.Time
	refreshing bool
}

func (s *Server) logVersion() *logVersion { return &s.logVer }

// get returns the version known (0: none) and whether it is due for a
// refresh that nobody has started yet; if so, the caller starts it.
func (lv *logVersion) get(now time.Time) (version uint32, refresh bool) {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	refresh = lv.version != 0 && !lv.refreshing && now.Sub(lv.checked) >= logVersionRefresh
	if refresh {
		lv.refreshing = true
	}
	return lv.version, refresh
}

// set records the version the log reported, or the leader's in a refusal,
// and returns it.
func (lv *logVersion) set(version uint32, now time.Time) uint32 {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	lv.version, lv.checked = version, now
	return version
}

func (lv *logVersion) refreshed() {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	lv.refreshing = false
}

// askLogVersion asks the log for its version and records it.
func (s *Server) askLogVersion(ctx context.Context) (uint32, error) {
	info, err := s.logInfo(ctx, false, true)
	if err != nil {
		return 0, err
	}
	return s.logVersion().set(max(info.LogVersion, 1), time.Now()), nil
}

// writeVersion is the version to write entries at: the log's version in
// force, which the first write asks for and later ones refresh in the
// background. While the log is above what this server supports, it
// refuses with logerr.ErrUnsupportedVersion (FailedPrecondition).
func (s *Server) writeVersion(ctx context.Context) (uint32, error) {
	lv := s.logVersion()
	v, refresh := lv.get(time.Now())
	switch {
	case v == 0:
		var err error
		if v, err = s.askLogVersion(ctx); err != nil {
			return 0, err
		}
	case refresh:
		go func() {
			defer lv.refreshed()
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if _, err := s.askLogVersion(rctx); err != nil && s.cfg.Logger != nil {
				s.cfg.Logger.Warn("could not refresh the log version", "error", err)
			}
		}()
	}
	if v > s.cfg.MaxSupportedVersion {
		return 0, fmt.Errorf("%w: the log is at version %d and this API server writes versions up to %d; upgrade it",
			logerr.ErrUnsupportedVersion, v, s.cfg.MaxSupportedVersion)
	}
	return v, nil
}

// versionRefused reports whether the log refused an append for its entry
// version, and if so records the version the leader said is in force.
func (s *Server) versionRefused(err error) bool {
	var le *logerr.Error
	if !errors.As(err, &le) || !errors.Is(err, logerr.ErrInvalidEntry) || le.Uint("log_version") == 0 {
		return false
	}
	s.logVersion().set(uint32(le.Uint("log_version")), time.Now())
	return true
}
