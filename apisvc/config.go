package apisvc

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/akutan/akutan/apisvc/internal/fanout"
)

// Config configures an API server.
type Config struct {
	// Listen is the gRPC address to serve on.
	Listen string
	// Log lists the log replicas' gRPC addresses.
	Log []string
	// Views configures view discovery, health checks and hedging.
	Views fanout.Config
	// Peers lists the other API servers' addresses, for cluster status.
	Peers []string
	// MaxLag is how far behind the log's last index a view may be and
	// still count as up to date.
	MaxLag uint64
	// MaxTxBytes limits one encoded transaction (the log's entry limit).
	MaxTxBytes int
	// WriteAttempts bounds how often a write retries after losing a race
	// for a name.
	WriteAttempts int
	// MaxSupportedVersion is the highest log entry version this server
	// writes. It writes at the log's version in force, and refuses writes
	// (FailedPrecondition) while the log is above this. It defaults to the
	// build's (MaxSupportedVersion); tests and staged upgrades raise it
	// (akutan-api --max-supported-version).
	MaxSupportedVersion uint32
	// PageLimit is the facts in one page of a lookup's answer when the
	// request names no limit, and MaxPageLimit caps the limit a request
	// names. MaxPageBytes ends a page once the views' answers for it hold
	// about this many bytes (a page holds at least one fact).
	PageLimit    int
	MaxPageLimit int
	MaxPageBytes int
	// DefaultTimeout bounds calls whose context has no deadline.
	DefaultTimeout time.Duration
	// Registerer receives the server's metrics (docs/metrics.md); nil
	// registers them on a private registry that nothing reads.
	Registerer prometheus.Registerer

	// DC names the datacenter this API server belongs to; it labels the
	// cluster verdicts (Verdicts, the akutan_cluster_* gauges).
	DC string
	// Logger receives the server's events, and the view fanout's unless
	// Views.Logger is set; nil means slog.Default().
	Logger *slog.Logger
	// Verdicts, when set, is called with the cluster verdicts after every
	// readiness evaluation (Ready).
	Verdicts func(fullyAvailable, healthy bool)

	// GRPCOptions are added to the gRPC server's options (the lifecycle's
	// interceptors, limits and keepalive); the server adds its own receive
	// limit, MaxTxBytes + 8 MiB. GRPCRegister, when set, is called with the
	// server after the API service is registered and before it serves, and
	// replaces the server's own always-SERVING health service.
	GRPCOptions  []grpc.ServerOption
	GRPCRegister func(*grpc.Server)
}

// DefaultConfig returns a configuration with every tunable set.
func DefaultConfig() Config {
	return Config{
		Views:          fanout.DefaultConfig(),
		MaxLag:         1000,
		MaxTxBytes:     8 << 20,
		WriteAttempts:  20,
		PageLimit:      10000,
		MaxPageLimit:   100000,
		MaxPageBytes:   16 << 20,
		DefaultTimeout: 30 * time.Second,

		MaxSupportedVersion: MaxSupportedVersion,
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.Listen == "" {
		errs = append(errs, errors.New("listen address is empty"))
	}
	if len(c.Log) == 0 {
		errs = append(errs, errors.New("no log replica addresses"))
	}
	if err := c.Views.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("views: %w", err))
	}
	if c.PageLimit <= 0 || c.MaxPageLimit < c.PageLimit || c.MaxPageBytes <= 0 {
		errs = append(errs, errors.New("page limit, max page limit and max page bytes must be positive, and max page limit at least page limit"))
	}
	if c.MaxTxBytes <= 0 || c.WriteAttempts <= 0 || c.DefaultTimeout <= 0 {
		errs = append(errs, errors.New("max tx bytes, write attempts and default timeout must be positive"))
	}
	if c.MaxSupportedVersion < 1 {
		errs = append(errs, errors.New("max supported version must be at least 1"))
	}
	return errors.Join(errs...)
}
