package fanout

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/akutan/akutan/internal/lifecycle/rpcconf"
	"github.com/akutan/akutan/proto/viewpb"
)

// replica is one discovered view address.
type replica struct {
	addr      string
	conn      *grpc.ClientConn // nil if the address is not a valid target
	client    viewpb.ViewClient
	ctx       context.Context // ends when the replica is removed or at Close
	cancel    context.CancelFunc
	fallback  bool          // another datacenter's view (Config.Fallback)
	firstPing chan struct{} // closed after the first ping
	slow      slowness

	// Guarded by Fanout.mu.
	status   *viewpb.StatusResponse
	err      error
	healthy  bool
	lastPing time.Time
}

// dialOptions are the options of every view connection. Reconnection backs
// off from 100ms to 2s, so a restarted view is reachable again within a
// couple of ping intervals.
func dialOptions(maxRecv int) []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: time.Second,
		}),
		grpc.WithKeepaliveParams(rpcconf.ClientKeepalive), // internal/lifecycle/rpcconf
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxRecv)),
	}
}

// resolveLoop re-resolves the DNS names and re-reads the view files every
// ResolveInterval.
func (f *Fanout) resolveLoop() {
	defer f.wg.Done()
	t := time.NewTicker(f.cfg.ResolveInterval)
	defer t.Stop()
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-t.C:
		}
		f.resolveAll()
		f.mu.Lock()
		f.applyAddrsLocked()
		f.mu.Unlock()
	}
}

// resolveAll resolves every DNS name and reads every view file, keeping a
// name's or a file's previous addresses if that fails.
func (f *Fanout) resolveAll() {
	for _, path := range append(append([]string(nil), f.cfg.Files...), f.cfg.FallbackFiles...) {
		addrs, err := readViewFile(path)
		if err != nil {
			if f.ctx.Err() == nil {
				f.log.Warn("read view file; keeping its previous addresses", "file", path, "err", err)
			}
			continue
		}
		f.mu.Lock()
		f.listed[path] = addrs
		f.mu.Unlock()
	}
	var wg sync.WaitGroup
	for _, name := range f.cfg.DNS {
		wg.Add(1)
		go func() {
			defer wg.Done()
			host, port, _ := net.SplitHostPort(name) // validated
			ctx, cancel := context.WithTimeout(f.ctx, f.cfg.PingTimeout)
			hosts, err := f.resolver.LookupHost(ctx, host)
			cancel()
			if err != nil {
				if f.ctx.Err() == nil {
					f.log.Warn("resolve view name; keeping its previous addresses", "name", name, "err", err)
				}
				return
			}
			addrs := make([]string, 0, len(hosts))
			for _, h := range hosts {
				addrs = append(addrs, net.JoinHostPort(h, port))
			}
			slices.Sort(addrs)
			f.mu.Lock()
			defer f.mu.Unlock()
			f.resolved[name] = slices.Compact(addrs)
		}()
	}
	wg.Wait()
}

// applyAddrsLocked adds the views that discovery found and removes those it
// no longer finds. f.mu is held.
func (f *Fanout) applyAddrsLocked() {
	if f.ctx.Err() != nil {
		return
	}
	want := map[string]bool{} // address -> fallback
	for _, a := range f.cfg.Fallback {
		want[a] = true
	}
	for _, path := range f.cfg.FallbackFiles {
		for _, a := range f.listed[path] {
			want[a] = true
		}
	}
	for _, a := range f.cfg.Static {
		want[a] = false
	}
	for _, path := range f.cfg.Files {
		for _, a := range f.listed[path] {
			want[a] = false
		}
	}
	for _, addrs := range f.resolved {
		for _, a := range addrs {
			want[a] = false
		}
	}
	changed := false
	for addr, rep := range f.replicas {
		if fallback, ok := want[addr]; !ok || fallback != rep.fallback {
			f.log.Info("view removed", "addr", addr)
			rep.cancel() // its ping loop closes the connection
			delete(f.replicas, addr)
			changed = true
		}
	}
	for addr, fallback := range want {
		if f.replicas[addr] == nil {
			f.log.Info("view discovered", "addr", addr, "fallback", fallback)
			f.replicas[addr] = f.startReplica(addr, fallback)
			changed = true
		}
	}
	if changed {
		f.rebuildLocked()
	}
}

// startReplica connects to addr and starts pinging it.
func (f *Fanout) startReplica(addr string, fallback bool) *replica {
	rep := &replica{addr: addr, fallback: fallback, firstPing: make(chan struct{})}
	rep.ctx, rep.cancel = context.WithCancel(f.ctx)
	conn, err := grpc.NewClient(addr, dialOptions(f.cfg.MaxRecvBytes)...)
	if err != nil {
		rep.err = fmt.Errorf("connect: %w", err)
		close(rep.firstPing)
		return rep
	}
	rep.conn, rep.client = conn, viewpb.NewViewClient(conn)
	f.wg.Add(1)
	go f.pingLoop(rep)
	return rep
}

// pingLoop pings rep every PingInterval until it is removed.
func (f *Fanout) pingLoop(rep *replica) {
	defer f.wg.Done()
	defer rep.conn.Close()
	t := time.NewTicker(f.cfg.PingInterval)
	defer t.Stop()
	for {
		f.ping(rep)
		select {
		case <-rep.firstPing:
		default:
			close(rep.firstPing)
		}
		select {
		case <-rep.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ping asks rep for its status and records the answer.
func (f *Fanout) ping(rep *replica) {
	ctx, cancel := context.WithTimeout(rep.ctx, f.cfg.PingTimeout)
	st, err := rep.client.Status(ctx, &viewpb.StatusRequest{})
	cancel()
	if rep.ctx.Err() != nil {
		return
	}
	if err == nil {
		err = checkStatus(st)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.replicas[rep.addr] != rep {
		return
	}
	if err != nil {
		if rep.healthy || rep.err == nil {
			f.log.Warn("view unhealthy: ping failed", "addr", rep.addr, "err", err)
		}
		rep.healthy, rep.err = false, fmt.Errorf("ping: %w", err)
	} else {
		if !rep.healthy {
			f.log.Info("view healthy", "addr", rep.addr, "space", spaceName(st.GetSpace()),
				"range", fmtRange(st.GetRange().GetStart(), st.GetRange().GetEnd()-1), "state", st.GetState().String())
		}
		rep.status, rep.healthy, rep.err, rep.lastPing = st, true, nil, time.Now()
	}
	f.rebuildLocked()
}

// checkStatus rejects a status that names no space or an empty range.
func checkStatus(st *viewpb.StatusResponse) error {
	var errs []error
	if s := st.GetSpace(); s != viewpb.Space_HASH_SP && s != viewpb.Space_HASH_PO {
		errs = append(errs, fmt.Errorf("unknown space %v", s))
	}
	if r := st.GetRange(); r.GetEnd() != 0 && r.GetEnd() <= r.GetStart() {
		errs = append(errs, fmt.Errorf("empty range [%#x, %#x)", r.GetStart(), r.GetEnd()))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: status: %w", ErrBadResponse, errors.Join(errs...))
	}
	return nil
}

// markFailed makes rep unhealthy until its next successful ping.
func (f *Fanout) markFailed(rep *replica, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.replicas[rep.addr] != rep || !rep.healthy {
		return
	}
	f.log.Warn("view unhealthy: request failed", "addr", rep.addr, "err", err)
	rep.healthy, rep.err = false, err
	f.rebuildLocked()
}

// readViewFile reads a file of view addresses: one per line, blank lines
// and '#' comments ignored.
func readViewFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var addrs []string
	for line := range strings.Lines(string(b)) {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		if a := strings.TrimSpace(line); a != "" {
			addrs = append(addrs, a)
		}
	}
	slices.Sort(addrs)
	return slices.Compact(addrs), nil
}
