// Package netguard guards the server's connections below net/http: it caps
// how many connections one client may hold open, so that no single address
// can use up the server's file descriptors and goroutines with idle or
// trickling connections, and it turns the few answers net/http writes by
// itself into JSON like every other error of the API (jsonerrors.go).
package netguard

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Listener is a net.Listener that refuses a connection from a client that
// already holds Max open connections: it is closed at once, before any of
// it is read, and Accept goes on to the next one. A connection counts from
// Accept until its Close, whoever closes it: net/http, or the broker that
// took a stream's connection over (hijacking hands over this same Conn).
//
// A client is an IPv4 address or an IPv6 /64 (one host's usual share: an
// attacker gets a whole /64 as easily as one address). Behind a proxy every
// connection comes from the proxy, which would make the cap the proxy's:
// a proxy's connections are exempt (the proxy caps its clients), or, if it
// is not known as one, the cap must be off or high.
type Listener struct {
	net.Listener
	max     int
	exempt  func(netip.Addr) bool
	refused atomic.Uint64

	mu   sync.Mutex
	open map[netip.Prefix]int
}

// Wrap wraps ln so that no client holds more than max connections, except
// the addresses for which exempt (if not nil) holds: proxies. max < 1 is no
// cap. Every connection it accepts answers net/http's own errors in JSON.
func Wrap(ln net.Listener, max int, exempt func(netip.Addr) bool) *Listener {
	return &Listener{Listener: ln, max: max, exempt: exempt, open: make(map[netip.Prefix]int)}
}

// Refused counts the connections refused so far.
func (l *Listener) Refused() uint64 { return l.refused.Load() }

// Open returns how many connections addr's client holds now.
func (l *Listener) Open(addr netip.Addr) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open[clientOf(addr)]
}

// Accept returns the next connection whose client is under the cap.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		addr, ok := remoteAddr(c)
		if l.max < 1 || !ok || (l.exempt != nil && l.exempt(addr)) {
			return track(c, nil), nil // no cap, not an IP connection, or a proxy's: not counted
		}
		client := clientOf(addr)
		if !l.acquire(client) {
			l.refused.Add(1)
			refuse(c)
			continue
		}
		return track(c, func() { l.release(client) }), nil
	}
}

func (l *Listener) acquire(client netip.Prefix) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[client] >= l.max {
		return false
	}
	l.open[client]++
	return true
}

func (l *Listener) release(client netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[client]--; l.open[client] <= 0 {
		delete(l.open, client)
	}
}

// refuse drops c with a reset rather than a FIN: nothing of the client's
// request was read, and the server keeps no TIME_WAIT socket for it. No
// 429 is answered: that would mean reading the request (a goroutine and a
// deadline per refused connection, under exactly the flood the cap is
// for), and under TLS a handshake first.
func refuse(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

func remoteAddr(c net.Conn) (netip.Addr, bool) {
	switch a := c.RemoteAddr().(type) {
	case *net.TCPAddr:
		ap := a.AddrPort()
		return ap.Addr().Unmap(), ap.Addr().IsValid()
	default:
		if a == nil {
			return netip.Addr{}, false
		}
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return netip.Addr{}, false
		}
		return ap.Addr().Unmap(), true
	}
}

// clientOf is the prefix a connection from addr counts against.
func clientOf(addr netip.Addr) netip.Prefix {
	addr = addr.Unmap().WithZone("")
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	p, _ := addr.Prefix(bits)
	return p
}

// track wraps c so that its first Close releases its place (if release is
// not nil) and its writes of net/http's own errors are made JSON. A
// *net.TCPConn is embedded as itself: its unexported writeBuffers is then
// promoted, so net.Buffers.WriteTo still sends a stream's burst in one
// writev, and its ReadFrom still splices files.
func track(c net.Conn, release func()) net.Conn {
	if tc, ok := c.(*net.TCPConn); ok {
		return &tcpConn{TCPConn: tc, release: release}
	}
	return &conn{Conn: c, release: release}
}

type tcpConn struct {
	*net.TCPConn
	once    sync.Once
	release func()
}

func (c *tcpConn) Write(p []byte) (int, error) { return writeJSONErrors(c.TCPConn, p) }

func (c *tcpConn) Close() error {
	err := c.TCPConn.Close()
	if c.release != nil {
		c.once.Do(c.release)
	}
	return err
}

type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *conn) Write(p []byte) (int, error) { return writeJSONErrors(c.Conn, p) }

func (c *conn) Close() error {
	err := c.Conn.Close()
	if c.release != nil {
		c.once.Do(c.release)
	}
	return err
}
