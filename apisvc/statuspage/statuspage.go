package statuspage

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"html/template"
	"net/http"
	"strconv"
	"time"

	"github.com/akutan/akutan/proto/apipb"
)

// RefreshSeconds is how often the page reloads itself.
const RefreshSeconds = 5

// ErrNoStatus is rendered when the status function returns neither a
// response nor an error.
var ErrNoStatus = errors.New("status: empty response")

//go:embed page.html.tmpl
var pageText string

var pageTmpl = template.Must(template.New("page").Parse(pageText))

// Handler serves the status page at "/", calling status on every request.
func Handler(status func(ctx context.Context) (*apipb.StatusResponse, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		now := time.Now().UTC()
		resp, err := status(r.Context())
		if err == nil && resp == nil {
			err = ErrNoStatus
		}
		code, p := http.StatusOK, (*page)(nil)
		if err != nil {
			code, p = http.StatusInternalServerError, errorPage(now, err)
		} else {
			p = build(now, resp)
		}
		p.Refresh = refresh(r)
		render(w, code, p)
	})
}

// refresh is the page's reload interval: RefreshSeconds, or the query's
// "refresh" in seconds, where 0 turns reloading off.
func refresh(r *http.Request) int {
	if q := r.URL.Query().Get("refresh"); q != "" {
		if n, err := strconv.Atoi(q); err == nil && n >= 0 {
			return n
		}
	}
	return RefreshSeconds
}

// render executes the template into a buffer first, so a template failure
// still answers with a readable page rather than half of one.
func render(w http.ResponseWriter, code int, p *page) {
	var buf bytes.Buffer
	if err := pageTmpl.Execute(&buf, p); err != nil {
		buf.Reset()
		code = http.StatusInternalServerError
		if err := pageTmpl.Execute(&buf, errorPage(p.Generated, err)); err != nil {
			http.Error(w, "status page: "+err.Error(), code)
			return
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}
