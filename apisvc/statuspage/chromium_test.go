package statuspage

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/akutan/akutan/proto/apipb"
)

// chromiumPath finds Debian's chromium (make tools-chromium installs it).
func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// artifactDir is where screenshots go: $AKUTAN_TEST_ARTIFACTS if set,
// else the test's temporary directory.
func artifactDir(t *testing.T) string {
	if d := os.Getenv("AKUTAN_TEST_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// box is an element's rendered size and place, from getBoundingClientRect,
// with its bar's.
type box struct {
	Space string  `json:"space"`
	Class string  `json:"cls"`
	Title string  `json:"title"`
	Left  float64 `json:"left"`
	Width float64 `json:"width"`
	BarL  float64 `json:"barLeft"`
	BarW  float64 `json:"barWidth"`
}

const boxesJS = `Array.from(document.querySelectorAll('.bar .seg')).map(e => {
	const r = e.getBoundingClientRect(), b = e.parentElement.getBoundingClientRect();
	return {space: e.closest('.space').dataset.space, cls: e.className, title: e.title,
		left: r.left, width: r.width, barLeft: b.left, barWidth: b.width};
})`

// TestChromium renders the page in headless Chromium and checks what a
// reader sees: the verdicts, every view, and range bars drawn to scale.
// It keeps a screenshot of each page.
func TestChromium(t *testing.T) {
	path := chromiumPath()
	if path == "" {
		t.Skip("chromium not found: run `make tools-chromium` (Debian's chromium package) to render the status page")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.Headless, chromedp.WindowSize(1400, 1000))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	dir := artifactDir(t)

	for _, tc := range []struct {
		name        string
		resp        *apipb.StatusResponse
		fully, hlth string
	}{
		{"healthy", healthyStatus(), "YES", "YES"},
		{"degraded", degradedStatus(), "NO", "NO"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(Handler(func(context.Context) (*apipb.StatusResponse, error) { return tc.resp, nil }))
			defer srv.Close()
			if err := chromedp.Do(bctx, chromedp.Navigate(srv.URL+"/?refresh=0"), chromedp.WaitVisible(chromedp.CSS("#log"))); err != nil {
				t.Fatal(err)
			}
			text, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("body")))
			if err != nil {
				t.Fatal(err)
			}
			text = strings.Join(strings.Fields(text), " ")
			for _, want := range []string{"Fully available " + tc.fully, "Healthy " + tc.hlth, "Leader log1", "Last index 1500"} {
				if !strings.Contains(text, want) {
					t.Errorf("the page does not read %q:\n%s", want, text)
				}
			}
			for _, v := range tc.resp.Views {
				if !strings.Contains(text, v.Address) {
					t.Errorf("view %s is not on the page", v.Address)
				}
			}

			boxes, err := chromedp.Run(bctx, chromedp.Evaluate[[]box](boxesJS))
			if err != nil {
				t.Fatal(err)
			}
			if len(boxes) == 0 {
				t.Fatal("no range bars on the page")
			}
			for _, b := range boxes {
				if b.Width <= 0 || b.BarW <= 0 {
					t.Errorf("%s %q (%s) is drawn %.1fpx wide in a %.1fpx bar", b.Space, b.Title, b.Class, b.Width, b.BarW)
				}
				// Every fixture range is a half of the space.
				left := (b.Left - b.BarL) / b.BarW
				if w := b.Width / b.BarW; w < 0.49 || w > 0.51 || (left > 0.01 && (left < 0.49 || left > 0.51)) {
					t.Errorf("%s %q is drawn over [%.3f, %.3f) of its bar, want a half", b.Space, b.Title, left, left+w)
				}
			}

			screenshot(bctx, t, dir, tc.name)
		})
	}

	t.Run("error", func(t *testing.T) {
		srv := httptest.NewServer(Handler(func(context.Context) (*apipb.StatusResponse, error) {
			return nil, errors.New("status: log info: <deadline exceeded>")
		}))
		defer srv.Close()
		if err := chromedp.Do(bctx, chromedp.Navigate(srv.URL+"/?refresh=0"), chromedp.WaitVisible(chromedp.CSS("#error"))); err != nil {
			t.Fatal(err)
		}
		text, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("body")))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"The status could not be read", "status: log info: <deadline exceeded>"} {
			if !strings.Contains(text, want) {
				t.Errorf("the error page does not read %q:\n%s", want, text)
			}
		}
		screenshot(bctx, t, dir, "error")
	})
}

// screenshot saves the whole page as dir/statuspage-name.png.
func screenshot(ctx context.Context, t *testing.T, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "statuspage-"+name+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", file)
}
