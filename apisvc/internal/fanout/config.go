package fanout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Resolver looks up the addresses of a host name. *net.Resolver is one.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

var _ Resolver = (*net.Resolver)(nil)

// Config configures a Fanout. Start from DefaultConfig and set Static, DNS or
// both.
type Config struct {
	// Static lists view gRPC addresses (any grpc.NewClient target).
	Static []string
	// Fallback lists other datacenters' views, read only where no view of
	// Static and DNS (this datacenter's) can serve a range, or take a hedge:
	// an explicit cross-datacenter fallback, off when empty. Every call to
	// one is counted (akutan_api_view_fallback_calls_total), and they never
	// count towards this datacenter's verdicts (Views marks them).
	Fallback []string
	// Files and FallbackFiles name files listing view addresses, one per
	// line ('#' starts a comment), re-read every ResolveInterval: this
	// datacenter's views and the fallback's. The control plane rewrites
	// them when it adds or retires views, so API servers follow without a
	// restart. A file that cannot be read keeps its previous addresses.
	Files         []string
	FallbackFiles []string
	// DNS lists "host:port" names, re-resolved every ResolveInterval; every
	// address a name resolves to, with the name's port, is a view. A
	// Kubernetes headless service works this way. A failed resolution keeps
	// the name's previous addresses.
	DNS []string
	// ResolveInterval is how often the DNS names are resolved.
	ResolveInterval time.Duration
	// PingInterval is how often every view gets a Status RPC. A view whose
	// ping fails, or whose lookup fails, is avoided until a ping succeeds.
	PingInterval time.Duration
	// PingTimeout bounds one Status RPC and one DNS resolution. New waits up
	// to about this long for the first pings.
	PingTimeout time.Duration
	// HedgeFloor is the least hedge delay. The delay is the larger of it and
	// the HedgePercentile of the latencies of recent successful calls (at
	// most 3 times their median; see doc.go).
	HedgeFloor      time.Duration
	HedgePercentile float64
	// MaxLookupsPerRPC bounds the lookups in one RPC; the lookups for one view
	// travel in as few RPCs as this allows. It must not exceed the views' own
	// limit (viewsvc's MaxLookups, 10,000 by default).
	MaxLookupsPerRPC int
	// MaxRecvBytes bounds one message from a view. Views stream under a
	// byte budget of their own (viewsvc's MaxChunkBytes, 1 MiB), so only
	// a single fact near the log's entry limit comes close; a larger
	// message fails its request with ErrTooLarge and leaves the view
	// healthy.
	MaxRecvBytes int
	// MaxInflightBytes bounds the bytes of paged lookup answers (Page) read
	// from views and not yet released, over all requests. When it is used
	// up, pages end early (each still holds at least one fact): one
	// client's huge lookups shorten their own pages instead of exhausting
	// the server's memory for everyone.
	MaxInflightBytes int
	// Resolver resolves the DNS names; nil means net.DefaultResolver.
	Resolver Resolver
	// Logger receives discovery and health changes; nil means
	// slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns a Config with every tunable set and no views.
func DefaultConfig() Config {
	return Config{
		ResolveInterval:  10 * time.Second,
		PingInterval:     time.Second,
		PingTimeout:      time.Second,
		HedgeFloor:       20 * time.Millisecond,
		HedgePercentile:  0.95,
		MaxLookupsPerRPC: 1000,
		MaxRecvBytes:     64 << 20,
		MaxInflightBytes: 256 << 20,
	}
}

// Validate reports every problem with the config at once.
func (c Config) Validate() error {
	var errs []error
	if len(c.Static) == 0 && len(c.DNS) == 0 && len(c.Files) == 0 {
		errs = append(errs, errors.New("no views: set Static, DNS or Files"))
	}
	if c.MaxRecvBytes < 1 {
		errs = append(errs, errors.New("max receive bytes must be positive"))
	}
	if c.MaxInflightBytes < 1 {
		errs = append(errs, errors.New("max in-flight bytes must be positive"))
	}
	for i, a := range c.Static {
		if a == "" {
			errs = append(errs, fmt.Errorf("static address %d is empty", i))
		}
	}
	for i, a := range c.Fallback {
		if a == "" {
			errs = append(errs, fmt.Errorf("fallback address %d is empty", i))
		}
	}
	for _, name := range c.DNS {
		host, port, err := net.SplitHostPort(name)
		if err != nil || host == "" || port == "" {
			errs = append(errs, fmt.Errorf("DNS name %q is not host:port", name))
		}
	}
	if c.ResolveInterval <= 0 {
		errs = append(errs, errors.New("resolve interval must be positive"))
	}
	if c.PingInterval <= 0 {
		errs = append(errs, errors.New("ping interval must be positive"))
	}
	if c.PingTimeout <= 0 {
		errs = append(errs, errors.New("ping timeout must be positive"))
	}
	if c.HedgeFloor < 0 {
		errs = append(errs, errors.New("hedge floor must not be negative"))
	}
	if !(c.HedgePercentile > 0 && c.HedgePercentile <= 1) {
		errs = append(errs, fmt.Errorf("hedge percentile %v is not in (0, 1]", c.HedgePercentile))
	}
	if c.MaxLookupsPerRPC < 1 {
		errs = append(errs, errors.New("max lookups per RPC must be positive"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid fanout config: %w", errors.Join(errs...))
	}
	return nil
}
