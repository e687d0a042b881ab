package chaos

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// echo serves connections that echo what they read, and reports every
// chunk it read on got.
func echo(t *testing.T) (string, chan string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan string, 100)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 100)
				for {
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					got <- string(buf[:n])
					c.Write(buf[:n])
				}
			}()
		}
	}()
	return ln.Addr().String(), got
}

// roundTrip writes msg through the proxy and reports whether the echo
// server got it and whether the reply came back.
func roundTrip(t *testing.T, p *TCPProxy, got chan string, msg string) (arrived, replied bool) {
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(msg))
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 100)
	n, _ := io.ReadFull(c, buf[:len(msg)])
	replied = string(buf[:n]) == msg
	select {
	case m := <-got:
		arrived = m == msg
	case <-time.After(100 * time.Millisecond):
	}
	return arrived, replied
}

func TestTCPProxyModes(t *testing.T) {
	target, got := echo(t)
	p, err := NewTCPProxy(target)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, tc := range []struct {
		mode             Mode
		arrived, replied bool
	}{{Pass, true, true}, {Blackhole, false, false}, {DropUp, false, false}, {DropDown, true, false}, {Pass, true, true}} {
		p.SetMode(tc.mode)
		arrived, replied := roundTrip(t, p, got, "hello "+tc.mode.String())
		if arrived != tc.arrived || replied != tc.replied {
			t.Errorf("%s: arrived %v replied %v, want %v %v", tc.mode, arrived, replied, tc.arrived, tc.replied)
		}
	}
}

func TestTCPProxyModeChangeClosesConnections(t *testing.T) {
	target, _ := echo(t)
	p, err := NewTCPProxy(target)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	p.SetMode(Blackhole)
	c.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := c.Read(buf); err == nil {
		t.Fatal("the connection survived a mode change")
	}
}

func TestS3Proxy(t *testing.T) {
	var hits atomic.Int64
	store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "ok "+r.Host)
	}))
	defer store.Close()
	p, err := NewS3Proxy(store.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	get := func() (int, string) {
		resp, err := http.Get(p.Endpoint() + "/bucket/key")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(); code != 200 || body != "ok "+strings.TrimPrefix(p.Endpoint(), "http://") {
		t.Fatalf("pass: %d %q (the Host header must be the proxy's, which signed requests name)", code, body)
	}
	for _, tc := range []struct {
		f     S3Fault
		code  int
		s3    string
		reach bool
	}{{S3InternalError, 500, "InternalError", false}, {S3SlowDown, 503, "SlowDown", false}, {S3LostReply, 500, "InternalError", true}} {
		p.Set(tc.f, 1)
		before := hits.Load()
		code, body := get()
		if code != tc.code || !strings.Contains(body, "<Code>"+tc.s3+"</Code>") || (hits.Load() > before) != tc.reach {
			t.Errorf("%s: %d %q, reached the store %v", tc.f, code, body, hits.Load() > before)
		}
	}
	p.Set(S3OK, 0)
	if code, _ := get(); code != 200 {
		t.Fatalf("healed: %d", code)
	}
}
