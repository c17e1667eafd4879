package edge_test

import (
	"bufio"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/ssechat/ssechat/app"
	"github.com/ssechat/ssechat/internal/chattest"
)

// refused reports whether a new connection from from to addr is refused:
// closed or reset before any answer to a request sent on it.
func refused(t *testing.T, addr, from string) bool {
	t.Helper()
	d := &net.Dialer{Timeout: chattest.Timeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		// The reset may even beat the connect to its completion.
		if !closedByPeer(err) {
			t.Fatalf("new connection: %v", err)
		}
		return true
	}
	c := &rawConn{Conn: nc, br: bufio.NewReader(nc)}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(chattest.Timeout))
	if _, err := c.Write([]byte(request("GET", "/api/rooms", ""))); err != nil {
		return closedByPeer(err)
	}
	resp, err := http.ReadResponse(c.br, &http.Request{Method: "GET"})
	if err != nil {
		if !closedByPeer(err) {
			t.Fatalf("new connection: %v, want it answered or closed", err)
		}
		return true
	}
	resp.Body.Close()
	return false
}

// One address holds at most --max-conns-per-ip connections, streams
// included: the next is closed before a byte of it is read, while other
// addresses are served. Closing one (a stream's, which the broker had
// taken over) makes room for another. Each refusal is counted in the
// metrics.
func TestConnectionsPerIP(t *testing.T) {
	const max = 3
	srv := start(t, func(c *app.Config) { c.MaxConnsPerIP = max; c.MetricsAddr = "127.0.0.1:0" })
	const refusals = `ssechat_connections_refused_total{reason="per_ip"}`
	if n := metric(t, srv, refusals); n != 0 {
		t.Fatalf("%s = %v before any refusal, want 0", refusals, n)
	}
	// Set up from 127.0.0.2, which the cap counts apart.
	other := client(t, "127.0.0.2")
	alice, _ := login(t, other, srv.URL, "alice")
	mustDo(t, other, http.StatusOK, "POST", srv.URL+"/api/rooms/lobby/join", alice, "")

	// From 127.0.0.1: two streams and an idle keep-alive connection.
	s1 := openStream(t, srv.Addr, "127.0.0.1", alice)
	s1.Ready()
	s2 := openStream(t, srv.Addr, "127.0.0.1", alice)
	s2.Ready()
	idle := dial(t, srv.Addr, "127.0.0.1")
	idle.send(t, request("GET", "/api/rooms", alice))
	if resp, body := idle.response(t, "GET"); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/rooms: %d %s", resp.StatusCode, body)
	}

	if !refused(t, srv.Addr, "127.0.0.1") {
		t.Fatalf("connection %d from 127.0.0.1 was served, cap %d", max+1, max)
	}
	if n := metric(t, srv, refusals); n != 1 {
		t.Errorf("%s = %v after one refusal, want 1", refusals, n)
	}
	// Another address is served meanwhile, streams included.
	mustDo(t, other, http.StatusOK, "GET", srv.URL+"/api/rooms", alice, "")
	s3 := openStream(t, srv.Addr, "127.0.0.2", alice)
	s3.Ready()

	// A closed stream frees its place once the broker closed its
	// connection.
	s1.Close()
	var kept *rawConn
	chattest.Eventually(t, "a connection from 127.0.0.1 after a stream closed", func() bool {
		nc, err := net.Dial("tcp", srv.Addr)
		if err != nil {
			return false
		}
		t.Cleanup(func() { nc.Close() })
		c := &rawConn{Conn: nc, br: bufio.NewReader(nc)}
		_ = c.SetDeadline(time.Now().Add(chattest.Timeout))
		if _, err := c.Write([]byte(request("GET", "/api/rooms", alice))); err != nil {
			c.Close()
			return false
		}
		resp, err := http.ReadResponse(c.br, &http.Request{Method: "GET"})
		if err != nil {
			c.Close()
			return false
		}
		resp.Body.Close()
		kept = c
		return resp.StatusCode == http.StatusOK
	})
	// That connection holds the place: the cap is full again.
	if !refused(t, srv.Addr, "127.0.0.1") {
		t.Fatalf("connection %d from 127.0.0.1 was served after the freed place was taken", max+1)
	}
	// (The wait for the freed place may have been refused a few times.)
	if n := metric(t, srv, refusals); n < 2 {
		t.Errorf("%s = %v after two refusals at least, want ≥ 2", refusals, n)
	}
	// The stream that stayed open is untouched by all of this.
	var e struct{ ID string }
	_, body := mustDo(t, other, http.StatusCreated, "POST", srv.URL+"/api/rooms/lobby/messages", alice, `{"text":"hi"}`)
	mustUnmarshal(t, body, &e)
	s2.Expect("message", func(got chattest.Event) bool { return got.ID == e.ID })
	kept.Close()
}

// A trusted proxy's connections carry many clients: they are not capped
// (the proxy caps its clients), while everyone else still is.
func TestTrustedProxyNotCapped(t *testing.T) {
	const max = 2
	srv := start(t, func(c *app.Config) {
		c.MaxConnsPerIP = max
		c.HTTP.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
	})
	proxy := client(t, "127.0.0.2")
	alice, _ := login(t, proxy, srv.URL, "alice")
	for range max + 2 {
		openStream(t, srv.Addr, "127.0.0.2", alice).Ready()
	}
	mustDo(t, proxy, http.StatusOK, "GET", srv.URL+"/api/rooms", alice, "")
	for range max {
		openStream(t, srv.Addr, "127.0.0.1", alice).Ready()
	}
	if !refused(t, srv.Addr, "127.0.0.1") {
		t.Fatalf("connection %d from 127.0.0.1 was served, cap %d", max+1, max)
	}
}
