package buildinfo

import (
	"strings"
	"testing"
)

func TestBannerRoundTrip(t *testing.T) {
	i := Info{Version: "v1.2.3", Commit: "abc", Date: "2026-01-02T03:04:05Z", GoVersion: "go1.26"}
	out := i.Banner("akutan-view", 2)
	if out != "akutan-view v1.2.3 (commit abc, built 2026-01-02T03:04:05Z, go1.26)\nsupports log entry versions up to 2\n" {
		t.Fatalf("Banner = %q", out)
	}
	build, v, err := ParseBanner(out)
	if err != nil || build != i.String() || v != 2 {
		t.Fatalf("ParseBanner = %q, %d, %v", build, v, err)
	}
	for _, bad := range []string{"", "akutan-view v1 (commit x)\n", "akutan-view v1\nsupports log entry versions up to 0\n", "akutan-view v1\nsupports log entry versions up to two\n"} {
		if _, _, err := ParseBanner(bad); err == nil {
			t.Errorf("ParseBanner(%q) accepted", bad)
		}
	}
}

func TestLogVersion(t *testing.T) {
	defer func(v string) { MaxLogVersion = v }(MaxLogVersion)
	MaxLogVersion = ""
	if v := LogVersion(1); v != 1 {
		t.Fatalf("without the link-time value: %d", v)
	}
	MaxLogVersion = "3"
	if v := LogVersion(1); v != 3 {
		t.Fatalf("with MaxLogVersion 3: %d", v)
	}
	MaxLogVersion = "x"
	defer func() {
		if recover() == nil {
			t.Fatal("a MaxLogVersion that is not a number was accepted")
		}
	}()
	LogVersion(1)
}

func TestGetFillsEverything(t *testing.T) {
	i := Get()
	if i.Version == "" || i.Commit == "" || i.Date == "" || i.GoVersion == "" {
		t.Fatalf("empty field: %+v", i)
	}
	if s := i.String(); !strings.Contains(s, i.Version) || !strings.Contains(s, "commit "+i.Commit) {
		t.Fatalf("String() = %q", s)
	}
}
