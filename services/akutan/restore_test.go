package main

import (
	"strings"
	"testing"

	"github.com/akutan/akutan/viewsvc"
)

func TestViewSpecs(t *testing.T) {
	var v viewSpecs
	for _, s := range []string{"a:sp:0:0x8000000000000000:/d/a", "b:po:0x8000000000000000:max:/d/b:with:colons"} {
		if err := v.Set(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	if len(v) != 2 || v[0].Space != viewsvc.SpaceSP || v[0].Range != (viewsvc.HashRange{Start: 0, End: 1 << 63}) ||
		v[1].Space != viewsvc.SpacePO || v[1].Range != (viewsvc.HashRange{Start: 1 << 63}) || v[1].Dir != "/d/b:with:colons" {
		t.Errorf("parsed %+v", v)
	}
	for s, want := range map[string]string{
		"a:sp:0:5":       "want NAME:SPACE:START:END:DIR",
		"a:xx:0:5:/d":    "space",
		"a:sp:9:5:/d":    "range",
		"a:sp:zero:5:/d": "start",
		"a:sp:0:lots:/d": "end",
	} {
		if err := v.Set(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error about %q", s, err, want)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
