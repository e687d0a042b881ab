package apisvc

import (
	"errors"
	"fmt"
	"time"

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
	// DefaultTimeout bounds calls whose context has no deadline.
	DefaultTimeout time.Duration
	// Registerer receives the server's metrics (docs/metrics.md); nil
	// registers them on a private registry that nothing reads.
	Registerer prometheus.Registerer
}

// DefaultConfig returns a configuration with every tunable set.
func DefaultConfig() Config {
	return Config{
		Views:          fanout.DefaultConfig(),
		MaxLag:         1000,
		MaxTxBytes:     8 << 20,
		WriteAttempts:  20,
		DefaultTimeout: 30 * time.Second,
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
	if c.MaxTxBytes <= 0 || c.WriteAttempts <= 0 || c.DefaultTimeout <= 0 {
		errs = append(errs, errors.New("max tx bytes, write attempts and default timeout must be positive"))
	}
	return errors.Join(errs...)
}
