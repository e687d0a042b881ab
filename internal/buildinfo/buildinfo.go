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
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
)

// Set with -ldflags -X; see the package comment.
var (
	Version string
	Commit  string
	Date    string
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
