// Package buildinfo holds the version, commit and build date stamped into
// Akutan's binaries at link time:
//
//	go build -ldflags "-X github.com/akutan/akutan/internal/buildinfo.Version=v1.2.3 \
//	  -X github.com/akutan/akutan/internal/buildinfo.Commit=abc123 \
//	  -X github.com/akutan/akutan/internal/buildinfo.Date=2026-01-02T03:04:05Z" ./services/...
//
// `make build` does this (version from `git describe --always --dirty`,
// the full commit hash, the UTC build date). A binary built without the
// flags (go run, go test, go install) falls back to what the Go toolchain
// recorded itself (runtime/debug.ReadBuildInfo: the VCS revision and time),
// and to "dev" and "unknown" when there is nothing.
//
// MaxLogVersion, when set the same way (-X ...buildinfo.MaxLogVersion=2),
// is the highest log entry version the build's servers support, in place
// of each service's own constant: how a test builds an "upgraded" binary.
// --version prints it on a second line (Banner), which is how the control
// plane learns what a directory of binaries can read (ParseBanner).
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
)

// Set with -ldflags -X; see the package comment.
var (
	Version       string
	Commit        string
	Date          string
	MaxLogVersion string
)

// Info is what a binary knows about its own build.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"go_version"`
}

var (
	once sync.Once
	info Info
)

// Get returns the build's info, filling what -ldflags left empty from the
// toolchain's build information.
func Get() Info {
	once.Do(func() {
		info = Info{Version: Version, Commit: Commit, Date: Date, GoVersion: runtime.Version()}
		if bi, ok := debug.ReadBuildInfo(); ok {
			settings := map[string]string{}
			for _, s := range bi.Settings {
				settings[s.Key] = s.Value
			}
			if info.Commit == "" {
				info.Commit = settings["vcs.revision"]
				if info.Commit != "" && settings["vcs.modified"] == "true" {
					info.Commit += "-dirty"
				}
			}
			if info.Date == "" {
				info.Date = settings["vcs.time"]
			}
			if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
				info.Version = bi.Main.Version
			}
		}
		if info.Version == "" {
			info.Version = "dev"
		}
		if info.Commit == "" {
			info.Commit = "unknown"
		}
		if info.Date == "" {
			info.Date = "unknown"
		}
	})
	return info
}

// String is the one line `--version` prints:
// "v1.2.3 (commit abc123, built 2026-01-02T03:04:05Z, go1.26.8)".
func (i Info) String() string {
	return fmt.Sprintf("%s (commit %s, built %s, %s)", i.Version, i.Commit, i.Date, i.GoVersion)
}

// LogVersion is the highest log entry version this build supports: the
// link-time MaxLogVersion when set, else builtin (the service's constant).
// A MaxLogVersion that is not a positive number is a broken build: it
// panics rather than run a server that claims a version it was not built
// for.
func LogVersion(builtin uint32) uint32 {
	if MaxLogVersion == "" {
		return builtin
	}
	v, err := strconv.ParseUint(MaxLogVersion, 10, 32)
	if err != nil || v == 0 {
		panic(fmt.Sprintf("buildinfo: MaxLogVersion %q set at link time is not a log version", MaxLogVersion))
	}
	return uint32(v)
}

// logVersionLine starts Banner's second line.
const logVersionLine = "supports log entry versions up to "

// Banner is what a server's --version prints: its name and String(), and
// the highest log entry version it supports.
func (i Info) Banner(name string, logVersion uint32) string {
	return fmt.Sprintf("%s %s\n%s%d\n", name, i, logVersionLine, logVersion)
}

// ParseBanner reads a server's --version output back: the build as the
// server reports it in Status and Info (String()), and the highest log
// entry version it supports.
func ParseBanner(out string) (build string, logVersion uint32, err error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	_, build, ok := strings.Cut(strings.TrimSpace(lines[0]), " ")
	if !ok || build == "" {
		return "", 0, fmt.Errorf("no build in --version output %q", out)
	}
	for _, l := range lines[1:] {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), logVersionLine); ok {
			v, err := strconv.ParseUint(rest, 10, 32)
			if err != nil || v == 0 {
				return "", 0, fmt.Errorf("log version %q in --version output: want a positive number", rest)
			}
			return build, uint32(v), nil
		}
	}
	return "", 0, fmt.Errorf("--version output %q does not say which log versions it supports (a build older than this command)", out)
}
