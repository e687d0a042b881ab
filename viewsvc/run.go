package viewsvc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/akutan/akutan/internal/backoff"
	"github.com/akutan/akutan/proto/viewpb"
)

// errStreamDone ends a Stream call from inside fn once decoding has stopped.
var errStreamDone = errors.New("stream done")

// Run applies the log from the last applied index + 1 until ctx is done,
// the view is closed, or applying fails; see the package doc for the rules.
// It returns nil when ctx is done or the view closes, and the error that
// stopped the view otherwise. The view keeps answering lookups at the
// indexes it applied either way. Run must not be called twice at once.
func (v *View) Run(ctx context.Context, log LogReader) error {
	v.mu.Lock()
	switch {
	case v.closed:
		v.mu.Unlock()
		return ErrClosed
	case v.running:
		v.mu.Unlock()
		return errors.New("view is already running")
	case v.stopErr != nil:
		err := v.stopErr
		v.mu.Unlock()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	v.running, v.cancelRun, v.runDone = true, cancel, make(chan struct{})
	v.tail, _ = log.(LogTail)
	done := v.runDone
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		v.running, v.cancelRun = false, nil
		if v.state != viewpb.State_STOPPED {
			v.state = viewpb.State_BOOTING
		}
		v.mu.Unlock()
		close(done)
	}()
	if v.needBoot {
		if err := v.boot(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	v.mu.Lock()
	from, version := v.applied+1, v.logVersion
	if stop := v.cfg.StopAt; stop > 0 && v.applied > stop {
		v.mu.Unlock()
		return fmt.Errorf("the view has applied index %d, past the index %d it should stop at", from-1, stop)
	}
	v.state = viewpb.State_CATCHING_UP
	v.mu.Unlock()
	ckDone := make(chan struct{})
	go func() {
		defer close(ckDone)
		v.checkpointLoop(ctx)
	}()
	defer func() { cancel(); <-ckDone }()

	items := make(chan []item, 16)
	prog := &progress{}
	go v.watchCaughtUp(ctx, log, prog)
	go v.watchLog(ctx, log, prog)
	applyErr := make(chan error, 1)
	go func() {
		err := v.applyLoop(ctx, items)
		if err != nil {
			cancel() // stop the stream
		}
		applyErr <- err
	}()
	v.streamLoop(ctx, log, from, version, items, prog)
	close(items)
	err := <-applyErr
	if err != nil {
		v.mu.Lock()
		v.stopErr = fmt.Errorf("%w: %w", ErrStopped, err)
		v.state = viewpb.State_STOPPED
		v.broadcastLocked()
		err = v.stopErr
		v.mu.Unlock()
		v.log.Error("view stopped applying the log", "err", err)
	}
	return err
}

// streamLoop reads and decodes the log into items until ctx is done or
// decoding meets an entry the view must stop at. When the reader fails it
// backs off and resumes at the next undecoded index.
func (v *View) streamLoop(ctx context.Context, log LogReader, next uint64, version uint32, items chan<- []item, prog *progress) {
	dec := &decoder{space: v.cfg.Space, rng: v.cfg.Range, maxVersion: v.cfg.MaxSupportedVersion, version: version}
	delay := backoff.New(v.cfg.RetryMin, v.cfg.RetryMax)
	stopAt := v.cfg.StopAt
	if stopAt > 0 && next > stopAt {
		<-ctx.Done() // already there: apply nothing more
		return
	}
	for ctx.Err() == nil {
		err := log.Stream(ctx, next, func(entries []LogEntry) error {
			batch := make([]item, 0, len(entries))
			var stop error
			for _, e := range entries {
				if stopAt > 0 && next > stopAt {
					stop = errStreamDone
					break
				}
				if e.Index != next {
					stop = fmt.Errorf("%w: got index %d, want %d", ErrLogGap, e.Index, next)
					break
				}
				it := dec.decode(e)
				batch = append(batch, it)
				next++
				if it.kind == itemError || (stopAt > 0 && next > stopAt) {
					stop = errStreamDone
					break
				}
			}
			// Hand over what was decoded even when stopping: next has
			// moved past it.
			if len(batch) > 0 {
				prog.delivered(next - 1)
				select {
				case items <- batch:
				case <-ctx.Done():
					return ctx.Err()
				}
				delay.Reset()
			}
			return stop
		})
		if errors.Is(err, errStreamDone) || ctx.Err() != nil {
			// Wait for the applier to finish or for ctx.
			<-ctx.Done()
			return
		}
		v.log.Warn("log stream failed; retrying", "from", next, "err", err)
		if delay.Wait(ctx) != nil {
			return
		}
	}
}

// LogTail is an optional LogReader capability: the index of the log's last
// entry. A view whose reader has it reports SERVING once it has applied that
// far. Without it, a view reports SERVING once it has applied everything
// delivered and the log has delivered nothing for Config.CaughtUpIdle.
type LogTail interface {
	LastIndex(ctx context.Context) (uint64, error)
}

// progress is what the stream has delivered, for watchCaughtUp.
type progress struct {
	mu    sync.Mutex
	index uint64
	at    time.Time
}

func (p *progress) delivered(index uint64) {
	p.mu.Lock()
	p.index, p.at = index, time.Now()
	p.mu.Unlock()
}

func (p *progress) get() (uint64, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.index, p.at
}

// watchCaughtUp moves the view from CATCHING_UP to SERVING once it has
// reached the end of the log; a view stays SERVING while it runs.
func (v *View) watchCaughtUp(ctx context.Context, log LogReader, prog *progress) {
	tail, _ := log.(LogTail)
	start := time.Now()
	t := time.NewTicker(v.cfg.CaughtUpIdle / 2)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		applied := v.LastApplied()
		caughtUp := false
		if stop := v.cfg.StopAt; stop > 0 {
			caughtUp = applied >= stop
		} else if tail != nil {
			tctx, cancel := context.WithTimeout(ctx, v.cfg.RetryMax)
			last, err := tail.LastIndex(tctx)
			cancel()
			caughtUp = err == nil && applied >= last
		} else {
			index, at := prog.get()
			if at.IsZero() {
				at = start
			}
			caughtUp = applied >= index && time.Since(at) >= v.cfg.CaughtUpIdle
		}
		if caughtUp && v.markServing() {
			return
		}
	}
}

// markServing reports SERVING if the view is catching up, and whether the
// view is now serving.
func (v *View) markServing() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.state == viewpb.State_CATCHING_UP {
		v.state = viewpb.State_SERVING
		v.log.Info("view caught up with the log", "applied", v.applied)
	}
	return v.state == viewpb.State_SERVING
}
