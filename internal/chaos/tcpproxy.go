package chaos

import (
	"io"
	"net"
	"sync"
)

// Mode is what a TCPProxy does with the bytes of its connections.
type Mode int

const (
	// Pass forwards both directions.
	Pass Mode = iota
	// Blackhole accepts connections and drops every byte both ways: a
	// link cut without a reset, so the peers time out as across a real
	// partition.
	Blackhole
	// DropUp drops the bytes from the dialer to the target (its requests
	// never arrive) and forwards the replies.
	DropUp
	// DropDown forwards the dialer's bytes to the target and drops the
	// target's replies.
	DropDown
)

func (m Mode) String() string {
	return [...]string{"pass", "blackhole", "drop-up", "drop-down"}[m]
}

// TCPProxy forwards a loopback listener to one target address. Changing
// its mode closes every open connection, so that no stream carries a gap:
// the peers reconnect and find the link as the new mode makes it.
type TCPProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	mode  Mode
	conns map[net.Conn]struct{}
}

// NewTCPProxy listens on 127.0.0.1:0 and forwards to target.
func NewTCPProxy(target string) (*TCPProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &TCPProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	return p, nil
}

// Addr is the address to dial instead of the target.
func (p *TCPProxy) Addr() string { return p.ln.Addr().String() }

// Target is the address the proxy forwards to.
func (p *TCPProxy) Target() string { return p.target }

// SetMode changes the mode and closes every open connection.
func (p *TCPProxy) SetMode(m Mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode == m {
		return
	}
	p.mode = m
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Close stops the listener and closes every connection.
func (p *TCPProxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// track records c as open under the current mode, which it returns.
func (p *TCPProxy) track(cs ...net.Conn) Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return p.mode
}

func (p *TCPProxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
		c.Close()
	}
}

func (p *TCPProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *TCPProxy) handle(c net.Conn) {
	p.mu.Lock()
	mode := p.mode
	p.mu.Unlock()
	if mode == Blackhole {
		p.track(c)
		io.Copy(io.Discard, c)
		p.untrack(c)
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	// The mode may have changed while dialing: the connection follows the
	// mode it was tracked under, and a later change closes it.
	mode = p.track(c, up)
	if mode == Blackhole {
		up.Close()
		io.Copy(io.Discard, c)
		p.untrack(c, up)
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn, drop bool) {
		if drop {
			io.Copy(io.Discard, src)
		} else {
			io.Copy(dst, src)
		}
		done <- struct{}{}
	}
	go pipe(up, c, mode == DropUp)
	go pipe(c, up, mode == DropDown)
	<-done
	p.untrack(c, up)
	<-done
}
