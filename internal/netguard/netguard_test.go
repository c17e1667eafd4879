package netguard

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// A wrapped TCP connection keeps *net.TCPConn's writev: net.Buffers.WriteTo
// must not fall back to one Write per buffer, which would turn each of the
// broker's chunked bursts into three system calls. probe's Write counts
// the fallback's calls; it is never called while writeBuffers is promoted.
func TestTrackedConnKeepsWritev(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	guarded := Wrap(ln, 2, nil)
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := guarded.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	tc, ok := server.(*tcpConn)
	if !ok {
		t.Fatalf("accepted %T, want *tcpConn", server)
	}
	p := &probe{tcpConn: tc}
	bufs := net.Buffers{[]byte("5\r\n"), []byte("hello"), []byte("\r\n")}
	if _, err := bufs.WriteTo(p); err != nil {
		t.Fatal(err)
	}
	if p.writes != 0 {
		t.Fatalf("net.Buffers.WriteTo made %d Write calls: writev is lost", p.writes)
	}
	got := make([]byte, 10)
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(client, got); err != nil || string(got) != "5\r\nhello\r\n" {
		t.Fatalf("read %q, %v", got, err)
	}
}

type probe struct {
	*tcpConn
	writes int
}

func (p *probe) Write(b []byte) (int, error) { p.writes++; return p.tcpConn.Write(b) }

// The cap counts per client until Close; the connection over it is closed
// before anything is read, and the next one is accepted.
func TestCapAndRelease(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	guarded := Wrap(ln, 2, nil)
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := guarded.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	next := func() net.Conn {
		t.Helper()
		select {
		case c := <-accepted:
			t.Cleanup(func() { c.Close() })
			return c
		case <-time.After(5 * time.Second):
			t.Fatal("no connection accepted")
		}
		return nil
	}
	dial()
	first := next()
	dial()
	next()
	loopback := netip.MustParseAddr("127.0.0.1")
	if n := guarded.Open(loopback); n != 2 {
		t.Fatalf("open = %d, want 2", n)
	}
	// The reset may even beat the client's connect to its completion.
	if third, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		_ = third.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = third.Read(make([]byte, 1))
		third.Close()
		if err == nil || errors.Is(err, net.ErrClosed) || isTimeout(err) {
			t.Fatalf("third connection read: %v, want EOF or reset", err)
		}
	} else if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("third connection: %v", err)
	}
	if guarded.Refused() != 1 {
		t.Fatalf("refused = %d, want 1", guarded.Refused())
	}
	first.Close()
	first.Close() // a second Close releases nothing more
	if n := guarded.Open(loopback); n != 1 {
		t.Fatalf("open after a close = %d, want 1", n)
	}
	dial()
	next()
	if n := guarded.Open(loopback); n != 2 {
		t.Fatalf("open = %d, want 2", n)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestClientOf(t *testing.T) {
	for _, tc := range []struct{ a, b string }{
		{"192.0.2.1", "192.0.2.1/32"},
		{"::ffff:192.0.2.1", "192.0.2.1/32"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2::ffff", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
	} {
		if got := clientOf(netip.MustParseAddr(tc.a)); got != netip.MustParsePrefix(tc.b) {
			t.Errorf("clientOf(%s) = %s, want %s", tc.a, got, tc.b)
		}
	}
}

// With no cap (max 0), or from an exempt address (a proxy's), nothing is
// counted nor refused.
func TestUncounted(t *testing.T) {
	local := netip.MustParseAddr("127.0.0.1")
	for name, tc := range map[string]struct {
		max    int
		exempt func(netip.Addr) bool
	}{
		"no cap": {0, nil},
		"exempt": {1, func(a netip.Addr) bool { return a == local }},
	} {
		t.Run(name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			guarded := Wrap(ln, tc.max, tc.exempt)
			for range 3 {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				s, err := guarded.Accept()
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
			}
			if guarded.Refused() != 0 || guarded.Open(local) != 0 {
				t.Fatalf("refused %d, open %d; want none", guarded.Refused(), guarded.Open(local))
			}
		})
	}
}
