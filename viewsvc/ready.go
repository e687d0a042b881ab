package viewsvc

import (
	"context"
	"errors"
	"fmt"

	"github.com/akutan/akutan/proto/viewpb"
)

// DefaultMaxLag is how many log entries a view may be behind the log's last
// index and still be ready; the API server's default too.
const DefaultMaxLag = 1000

// Ready reports nil when v is useful: SERVING and within maxLag entries of
// the last index of the log that tail reads (a view stopped at a point,
// StopAt, is ready once it reached it). Otherwise it says why not: the
// state, the view's error, the lag, or that the log could not be asked.
// It is the readiness of akutan-view's /readyz and gRPC health.
func Ready(ctx context.Context, v *View, tail LogTail, maxLag uint64) error {
	st := v.Status()
	if st.State != viewpb.State_SERVING {
		if st.Err != nil {
			return fmt.Errorf("view is %s: %w", st.State, st.Err)
		}
		return fmt.Errorf("view is %s, not SERVING (applied through %d)", st.State, st.LastApplied)
	}
	if v.cfg.StopAt > 0 || tail == nil {
		return nil
	}
	last, err := tail.LastIndex(ctx)
	if err != nil {
		return fmt.Errorf("the log's last index is unknown: %w", err)
	}
	if last > st.LastApplied && last-st.LastApplied > maxLag {
		return fmt.Errorf("view lags the log by %d entries (applied %d, log %d; max lag %d)", last-st.LastApplied, st.LastApplied, last, maxLag)
	}
	if st.Err != nil {
		return errors.Join(errors.New("view stopped applying"), st.Err)
	}
	return nil
}
