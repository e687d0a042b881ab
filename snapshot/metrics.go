package snapshot

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Store operations, the values of the op label of the bucket metrics.
const (
	OpPut    = "put"
	OpPutIf  = "put_if"
	OpGet    = "get"
	OpHead   = "head"
	OpDelete = "delete"
	OpList   = "list"
)

// StoreMetrics counts and times the requests a store makes to the bucket.
// One StoreMetrics is shared by every store a process instruments, so that
// a process registers the metric families once.
type StoreMetrics struct {
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
}

// NewStoreMetrics registers the bucket metrics on reg (nil: on a private
// registry, which nothing reads). It returns the metrics already
// registered on reg when there are some, so several components of one
// process may each ask for them.
func NewStoreMetrics(reg prometheus.Registerer) *StoreMetrics {
	m := &StoreMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "akutan_bucket_requests_total",
			Help: "Object-store requests, by operation.",
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "akutan_bucket_errors_total",
			Help: "Object-store requests that failed, by operation; a missing object (not found) and a failed condition are answers, not errors.",
		}, []string{"op"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "akutan_bucket_request_duration_seconds",
			Help:    "Time to the object store's answer, by operation (for a get: until the body is read or closed).",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10), // 1 ms .. 262 s
		}, []string{"op"}),
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m.requests = registerOrExisting(reg, m.requests)
	m.errors = registerOrExisting(reg, m.errors)
	m.seconds = registerOrExisting(reg, m.seconds)
	for _, op := range []string{OpPut, OpPutIf, OpGet, OpHead, OpDelete, OpList} {
		m.requests.WithLabelValues(op)
		m.errors.WithLabelValues(op)
		m.seconds.WithLabelValues(op)
	}
	return m
}

// registerOrExisting registers c, or returns the equal collector reg
// already holds.
func registerOrExisting[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // a programming error: another metric took the name
	}
	return c
}

// InstrumentStore returns s with every request counted and timed in the
// bucket metrics registered on reg (see NewStoreMetrics).
func InstrumentStore(s Store, reg prometheus.Registerer) Store {
	return NewStoreMetrics(reg).Instrument(s)
}

// Instrument returns s with every request counted and timed in m.
func (m *StoreMetrics) Instrument(s Store) Store {
	if s == nil {
		return nil
	}
	if is, ok := s.(*instrumented); ok && is.m.requests == m.requests {
		return s
	}
	return &instrumented{s: s, m: m}
}

// instrumented is a Store that records its requests in StoreMetrics.
type instrumented struct {
	s Store
	m *StoreMetrics
}

var _ Store = (*instrumented)(nil)

// Unwrap returns the instrumented store, for optional interfaces such as
// EnsureBucket.
func (i *instrumented) Unwrap() Store { return i.s }

// done records one request of op that started at start.
func (m *StoreMetrics) done(op string, start time.Time, err error) {
	m.requests.WithLabelValues(op).Inc()
	m.seconds.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrPrecondition) {
		m.errors.WithLabelValues(op).Inc()
	}
}

func (i *instrumented) Put(ctx context.Context, key string, body io.Reader, size int64) (ObjectInfo, error) {
	start := time.Now()
	info, err := i.s.Put(ctx, key, body, size)
	i.m.done(OpPut, start, err)
	return info, err
}

func (i *instrumented) PutIf(ctx context.Context, key string, data []byte, cond Condition) (ObjectInfo, error) {
	start := time.Now()
	info, err := i.s.PutIf(ctx, key, data, cond)
	i.m.done(OpPutIf, start, err)
	return info, err
}

func (i *instrumented) Get(ctx context.Context, key string, off, n int64) (io.ReadCloser, ObjectInfo, error) {
	start := time.Now()
	rc, info, err := i.s.Get(ctx, key, off, n)
	if err != nil {
		i.m.done(OpGet, start, err)
		return rc, info, err
	}
	return &timedBody{ReadCloser: rc, m: i.m, start: start}, info, nil
}

func (i *instrumented) Head(ctx context.Context, key string) (ObjectInfo, error) {
	start := time.Now()
	info, err := i.s.Head(ctx, key)
	i.m.done(OpHead, start, err)
	return info, err
}

func (i *instrumented) Delete(ctx context.Context, key string) error {
	start := time.Now()
	err := i.s.Delete(ctx, key)
	i.m.done(OpDelete, start, err)
	return err
}

func (i *instrumented) List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error {
	start := time.Now()
	var fnErr error
	err := i.s.List(ctx, prefix, func(info ObjectInfo) error {
		fnErr = fn(info)
		return fnErr
	})
	if err != nil && fnErr != nil && errors.Is(err, fnErr) {
		i.m.done(OpList, start, nil) // the caller stopped the listing
	} else {
		i.m.done(OpList, start, err)
	}
	return err
}

// timedBody records a get when its body is read to the end, fails, or is
// closed, whichever comes first.
type timedBody struct {
	io.ReadCloser
	m     *StoreMetrics
	start time.Time
	ended bool
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !b.ended {
		b.ended = true
		if err == io.EOF {
			b.m.done(OpGet, b.start, nil)
		} else {
			b.m.done(OpGet, b.start, err)
		}
	}
	return n, err
}

func (b *timedBody) Close() error {
	err := b.ReadCloser.Close()
	if !b.ended {
		b.ended = true
		b.m.done(OpGet, b.start, nil)
	}
	return err
}
