package statuspage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/akutan/akutan/proto/apipb"
)

// get serves one request for path through Handler answering resp, err.
func get(t *testing.T, method, path string, resp *apipb.StatusResponse, err error) (int, http.Header, string) {
	t.Helper()
	h := Handler(func(ctx context.Context) (*apipb.StatusResponse, error) {
		if ctx == nil {
			t.Error("status called without a context")
		}
		return resp, err
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, rec.Header(), string(body)
}

func render200(t *testing.T, resp *apipb.StatusResponse) string {
	t.Helper()
	code, hdr, body := get(t, http.MethodGet, "/", resp, nil)
	if code != http.StatusOK {
		t.Fatalf("code %d, body:\n%s", code, body)
	}
	if ct := hdr.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Fatalf("content type %q", ct)
	}
	return body
}

func mustContain(t *testing.T, where, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %q", where, w)
		}
	}
}

func mustNotContain(t *testing.T, where, body string, unwanted ...string) {
	t.Helper()
	for _, w := range unwanted {
		if strings.Contains(body, w) {
			t.Errorf("%s has %q", where, w)
		}
	}
}

// part cuts body from the first from to the next to after it.
func part(t *testing.T, body, from, to string) string {
	t.Helper()
	i := strings.Index(body, from)
	if i < 0 {
		t.Fatalf("no %q in the page", from)
	}
	rest := body[i+len(from):]
	if j := strings.Index(rest, to); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

func spacePart(t *testing.T, body, space string) string {
	return part(t, body, `data-space="`+space+`"`, `<div class="axis`)
}

func TestHealthy(t *testing.T) {
	resp := healthyStatus()
	body := render200(t, resp)
	mustContain(t, "page", body,
		`<meta http-equiv="refresh" content="5">`,
		`<div class="verdict ok">`+"\n"+`<div class="head">Fully available <span class="pill ok">YES</span>`,
		`<div class="head">Healthy <span class="pill ok">YES</span>`,
		"This cluster",
	)
	if n := strings.Count(body, "Nothing missing."); n != 2 {
		t.Errorf("%d verdicts say nothing is missing, want 2", n)
	}
	for _, v := range resp.Views {
		mustContain(t, "page", body, `<div class="addr mono">`+v.Address+`</div>`)
	}
	for _, space := range []string{"HashSP", "HashPO"} {
		s := spacePart(t, body, space)
		if n := strings.Count(s, `<div class="maprow">`); n != 4 {
			t.Errorf("%s: %d map rows, want 3 of views and the coverage strip", space, n)
		}
		mustContain(t, space, s,
			`<div class="seg ok" style="left: 0.0000%; width: 50.0000%"`,
			`<div class="seg ok" style="left: 50.0000%; width: 50.0000%"`,
			`title="[0x8000000000000000, 2^64): 3 up-to-date views">3</div>`,
			"applied 1500 · lag 0",
		)
		mustNotContain(t, space, s, "seg bad", "seg warn", "gap")
	}
	log := part(t, body, `id="log"`, `</section>`)
	mustContain(t, "log", log,
		`<dt>Leader</dt><dd class="mono">log1</dd>`,
		`<dt>First index</dt><dd>1201</dd>`,
		`<dt>Last index</dt><dd>1500</dd>`,
		"holds at least through index 1200",
		`log1</td><td class="mono">127.0.0.1:17101</td><td><b>leader</b></td><td class="num">1500</td>`,
		`log2</td><td class="mono">127.0.0.1:17102</td><td>follower</td>`,
	)
	views := part(t, body, `id="views"`, `</section>`)
	mustContain(t, "views", views,
		"<dt>Oldest checkpoint</dt><dd>index 1410, 90 entries behind the log</dd>",
		`127.0.0.1:17313</td><td>HashPO</td><td class="mono">[0x8000000000000000, 2^64)</td><td class="nowrap">serving</td><td class="num">1500</td><td class="num">0</td><td class="num">1411</td><td class="nowrap">89 behind</td>`,
	)
	for dc := 1; dc <= 3; dc++ {
		mustContain(t, "API servers", body, fmt.Sprintf(`<span class="dot ok"></span>127.0.0.1:1720%d</td><td>serving`, dc))
	}
}

func TestGapInHashPO(t *testing.T) {
	body := render200(t, gapStatus())
	want := "<li>HashPO [0x8000000000000000, 2^64): 0 up-to-date views, need 1</li>"
	mustContain(t, "page", body,
		`<div class="head">Fully available <span class="pill bad">NO</span></div>`+"\n"+`<ul class="missing">`+want,
		`<div class="head">Healthy <span class="pill bad">NO</span>`,
	)
	po := spacePart(t, body, "HashPO")
	mustContain(t, "HashPO", po,
		"1 gap with no up-to-date view",
		`<div class="seg bad" style="left: 50.0000%; width: 50.0000%" title="[0x8000000000000000, 2^64): 0 up-to-date views">gap</div>`,
		`<div class="seg ok" style="left: 0.0000%; width: 50.0000%" title="[0x0, 0x8000000000000000): 3 up-to-date views">3</div>`,
		"booting 25% · applied 0 · lag 1500",
		"catching up · applied 900 · lag 600",
	)
	if n := strings.Count(po, `<div class="seg warn" style="left: 50.0000%; width: 50.0000%"`); n != 3 {
		t.Errorf("HashPO: %d amber views over [2^63, 2^64), want 3", n)
	}
	mustNotContain(t, "HashSP", spacePart(t, body, "HashSP"), "gap", "seg warn", "seg bad")
}

func TestUnreachableView(t *testing.T) {
	body := render200(t, unreachableStatus())
	sp := spacePart(t, body, "HashSP")
	seg := part(t, sp, `<div class="seg bad" style="left: 0.0000%; width: 50.0000%" title="127.0.0.1:17320`, `</div></div>`)
	mustContain(t, "the unreachable view's segment", seg,
		"unreachable (last seen serving)",
		"error: rpc error: code = Unavailable desc = connection refused",
		"checkpoint error: put sp/0000/manifest: &lt;timeout&gt;",
	)
	mustContain(t, "HashSP", sp, `title="[0x0, 0x8000000000000000): 2 up-to-date views">2</div>`)
	row := part(t, body, `127.0.0.1:17320</td>`, `</tr>`)
	mustContain(t, "the unreachable view's row", row,
		"unreachable (last seen serving)",
		"checkpoint: put sp/0000/manifest: &lt;timeout&gt;",
		"connection refused",
	)
	mustContain(t, "page", body,
		`<span class="pill bad">1 never answered</span> range unknown: <span class="mono">127.0.0.1:17399</span>`,
		`<span class="dot bad"></span>127.0.0.1:17399</td><td></td><td class="mono"></td><td class="nowrap">unreachable</td>`,
		"dial: no route to host",
		`<div class="head">Fully available <span class="pill ok">YES</span>`,
		`<div class="head">Healthy <span class="pill bad">NO</span>`,
		"<dt>Views whose last checkpoint failed</dt><dd><span class=\"pill bad\">1</span>",
	)
	if strings.Contains(body, "<timeout>") {
		t.Error("an error reached the page unescaped")
	}
}

func TestLogWithoutLeader(t *testing.T) {
	body := render200(t, noLeaderStatus())
	log := part(t, body, `id="log"`, `</section>`)
	mustContain(t, "log", log,
		`<dt>Available</dt><dd><span class="pill bad">NO</span> <span class="mono" style="color: var(--bad)">rpc error: code = Unavailable desc = no leader</span>`,
		`<dt>Leader</dt><dd class="mono"><span class="pill bad">NO LEADER</span></dd>`,
		`<span class="dot ok"></span>log1</td><td class="mono">127.0.0.1:17101</td><td><span class="muted">no leader</span></td>`,
		`<span class="dot bad"></span>log2</td>`,
		"connection refused",
	)
	mustNotContain(t, "log", log, "<b>leader</b>", "follower")
	if n := strings.Count(body, "<li>log: not available for appends and non-stale reads"); n != 2 {
		t.Errorf("%d verdicts name the log, want 2", n)
	}
}

func TestStatusError(t *testing.T) {
	code, hdr, body := get(t, http.MethodGet, "/", nil, errors.New("status: <api> unavailable"))
	if code != http.StatusInternalServerError {
		t.Fatalf("code %d", code)
	}
	if ct := hdr.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Fatalf("content type %q", ct)
	}
	mustContain(t, "error page", body,
		"<title>Akutan status: error</title>",
		"The status could not be read",
		"<pre>status: &lt;api&gt; unavailable</pre>",
		`<meta http-equiv="refresh" content="5">`,
		"</html>",
	)
	mustNotContain(t, "error page", body, `id="verdicts"`, `id="log"`)

	code, _, body = get(t, http.MethodGet, "/", nil, nil)
	if code != http.StatusInternalServerError || !strings.Contains(body, ErrNoStatus.Error()) {
		t.Fatalf("nil response: code %d, body:\n%s", code, body)
	}
}

func TestEmptyResponse(t *testing.T) {
	// A response with nothing in it still draws every section.
	body := render200(t, &apipb.StatusResponse{})
	mustContain(t, "page", body,
		"<li>not reported</li>",
		"no view reports this space",
		"No views are known.",
		"No members are known.",
		"No API servers are known.",
		`<span class="pill bad">NO LEADER</span>`,
	)
}

func TestRoutes(t *testing.T) {
	resp := healthyStatus()
	if code, _, _ := get(t, http.MethodGet, "/favicon.ico", resp, nil); code != http.StatusNotFound {
		t.Errorf("GET /favicon.ico: %d", code)
	}
	if code, hdr, _ := get(t, http.MethodPost, "/", resp, nil); code != http.StatusMethodNotAllowed || hdr.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: %d, Allow %q", code, hdr.Get("Allow"))
	}
	if code, _, _ := get(t, http.MethodHead, "/", resp, nil); code != http.StatusOK {
		t.Errorf("HEAD /: %d", code)
	}
}

func TestRefreshQuery(t *testing.T) {
	resp := healthyStatus()
	_, _, body := get(t, http.MethodGet, "/?refresh=0", resp, nil)
	mustNotContain(t, "?refresh=0", body, `http-equiv="refresh"`, "refreshes every")
	_, _, body = get(t, http.MethodGet, "/?refresh=30", resp, nil)
	mustContain(t, "?refresh=30", body, `<meta http-equiv="refresh" content="30">`)
	_, _, body = get(t, http.MethodGet, "/?refresh=-1", resp, nil)
	mustContain(t, "?refresh=-1", body, `<meta http-equiv="refresh" content="5">`)
}
