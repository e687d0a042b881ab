// Package hclogslog routes hashicorp/go-hclog logging (Raft, raft-wal) into
// log/slog: New returns an hclog.Logger whose every event is an slog record
// of the wrapped logger, so a server has one log format and one level.
//
// Levels map trace and debug to slog's Debug (trace one step below it),
// info, warn and error to Info, Warn and Error. An hclog name becomes the
// attribute "component" (names joined with "."); implied arguments from
// With become slog attributes. SetLevel only raises the floor below which
// events are dropped before slog sees them; slog's handler still filters.
package hclogslog

import (
	"context"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// LevelTrace is hclog's trace level in slog terms.
const LevelTrace = slog.LevelDebug - 4

// New returns an hclog.Logger that writes to l under the given name.
func New(l *slog.Logger, name string) hclog.Logger {
	lv := &atomic.Int32{}
	lv.Store(int32(hclog.Trace))
	return &adapter{l: l, name: name, level: lv}
}

type adapter struct {
	l       *slog.Logger
	name    string
	implied []any
	level   *atomic.Int32 // hclog.Level, shared by derived loggers
}

var _ hclog.Logger = (*adapter)(nil)

func toSlog(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace:
		return LevelTrace
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

func (a *adapter) enabled(level hclog.Level) bool {
	if level == hclog.Off || level < hclog.Level(a.level.Load()) {
		return false
	}
	return a.l.Enabled(context.Background(), toSlog(level))
}

func (a *adapter) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	if !a.enabled(level) {
		return
	}
	attrs := make([]any, 0, 2+len(a.implied)+len(args))
	if a.name != "" {
		attrs = append(attrs, "component", a.name)
	}
	attrs = append(attrs, a.implied...)
	attrs = append(attrs, args...)
	a.l.Log(context.Background(), toSlog(level), msg, attrs...)
}

func (a *adapter) Trace(msg string, args ...any) { a.Log(hclog.Trace, msg, args...) }
func (a *adapter) Debug(msg string, args ...any) { a.Log(hclog.Debug, msg, args...) }
func (a *adapter) Info(msg string, args ...any)  { a.Log(hclog.Info, msg, args...) }
func (a *adapter) Warn(msg string, args ...any)  { a.Log(hclog.Warn, msg, args...) }
func (a *adapter) Error(msg string, args ...any) { a.Log(hclog.Error, msg, args...) }

func (a *adapter) IsTrace() bool { return a.enabled(hclog.Trace) }
func (a *adapter) IsDebug() bool { return a.enabled(hclog.Debug) }
func (a *adapter) IsInfo() bool  { return a.enabled(hclog.Info) }
func (a *adapter) IsWarn() bool  { return a.enabled(hclog.Warn) }
func (a *adapter) IsError() bool { return a.enabled(hclog.Error) }

func (a *adapter) ImpliedArgs() []any { return a.implied }

func (a *adapter) With(args ...any) hclog.Logger {
	b := *a
	b.implied = append(append([]any(nil), a.implied...), args...)
	return &b
}

func (a *adapter) Name() string { return a.name }

func (a *adapter) Named(name string) hclog.Logger {
	b := *a
	if a.name != "" {
		b.name = a.name + "." + name
	} else {
		b.name = name
	}
	return &b
}

func (a *adapter) ResetNamed(name string) hclog.Logger {
	b := *a
	b.name = name
	return &b
}

func (a *adapter) SetLevel(level hclog.Level) { a.level.Store(int32(level)) }

func (a *adapter) GetLevel() hclog.Level {
	for _, l := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if a.enabled(l) {
			return l
		}
	}
	return hclog.Off
}

func (a *adapter) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(a.StandardWriter(opts), "", 0)
}

func (a *adapter) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	infer := opts != nil && opts.InferLevels
	return writer{a: a, infer: infer}
}

// writer turns lines of the standard library's logger into events,
// reading a "[LEVEL]" prefix when asked to (Raft's transport and older
// dependencies log that way).
type writer struct {
	a     *adapter
	infer bool
}

func (w writer) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		level := hclog.Info
		if w.infer {
			level, line = inferLevel(line)
		}
		w.a.Log(level, line)
	}
	return len(p), nil
}

func inferLevel(line string) (hclog.Level, string) {
	for prefix, level := range map[string]hclog.Level{
		"[TRACE]": hclog.Trace, "[DEBUG]": hclog.Debug, "[INFO]": hclog.Info,
		"[WARN]": hclog.Warn, "[ERR]": hclog.Error, "[ERROR]": hclog.Error,
	} {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			return level, strings.TrimSpace(rest)
		}
	}
	return hclog.Info, line
}
