package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssechat/ssechat/internal/chattest"
)

// newOursRunner points a runner at a real server, as chatload -target ours
// would.
func newOursRunner(t *testing.T, cfg config) *runner {
	t.Helper()
	srv := chattest.Start(t)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	col := &collector{}
	sess, err := loadSessions("")
	if err != nil {
		t.Fatal(err)
	}
	hosts := []string{u.Host}
	if n := len(cfg.Addrs); n > 1 {
		// Several instances of one chat: as many loopback proxies in front
		// of the one server, each counting the connections it carried.
		hosts = nil
		for range n {
			hosts = append(hosts, startProxy(t, u.Host))
		}
	}
	cfg.Target, cfg.Name, cfg.Addr, cfg.Addrs, cfg.Room = "ours", "ours", strings.Join(hosts, ","), hosts, "bench"
	cfg.Drain, cfg.ConnectWait, cfg.Concurrency = 10*time.Second, 10*time.Second, 8
	streams := max(cfg.Subs, cfg.Members)
	return &runner{cfg: cfg, col: col, log: log,
		sys: newOurs(hosts, "secret-password", newDialers(1), sess, col, log, cfg.Concurrency, true, time.Second, streams)}
}

// proxyConns counts the connections each test proxy carried, by its address.
var proxyConns sync.Map // host:port -> *atomic.Int64

// startProxy forwards a loopback port to target and returns its host:port.
func startProxy(t *testing.T, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := new(atomic.Int64)
	proxyConns.Store(ln.Addr().String(), n)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		// Idle keep-alive connections stay open: close them all.
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			wg.Add(2)
			pipe := func(dst, src net.Conn) {
				defer wg.Done()
				io.Copy(dst, src)
				dst.Close()
				src.Close()
			}
			go pipe(s, c)
			go pipe(c, s)
		}
	}()
	return ln.Addr().String()
}

// The write workload against the real server: every POST is acknowledged
// and every member's stream receives every message exactly once.
func TestWriteAgainstOurServer(t *testing.T) {
	t.Run("plain", func(t *testing.T) { testWrite(t, false) })
	// Each post with a key of its own: every one is new (201), none is
	// answered as a repeat (200, which the poster counts as an error).
	t.Run("idempotency keys", func(t *testing.T) { testWrite(t, true) })
}

func testWrite(t *testing.T, keyed bool) {
	r := newOursRunner(t, config{Mode: "write", Members: 6, Posters: 3, Duration: time.Second})
	r.sys.(*ours).keyed = keyed
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rs, err := r.runWrite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res := rs[0]
	if res.Acked == 0 || res.PublishErrors != 0 {
		t.Fatalf("acked %d, errors %d", res.Acked, res.PublishErrors)
	}
	if res.Lost != 0 || res.Dups != 0 || res.Disconnects != 0 {
		t.Fatalf("lost %d, duplicated %d, disconnects %d", res.Lost, res.Dups, res.Disconnects)
	}
	if want := res.Acked * int64(6); res.Delivered != want {
		t.Fatalf("delivered %d, want %d (%d acked × 6 members)", res.Delivered, want, res.Acked)
	}
	if res.P50ms <= 0 || res.PostP50ms <= 0 {
		t.Fatalf("latencies not measured: delivery p50 %v ms, POST p50 %v ms", res.P50ms, res.PostP50ms)
	}
}

// The fan-out workload posts open-loop, several messages in flight per
// publisher, each on its own keep-alive connection.
func TestFanoutAgainstOurServer(t *testing.T) {
	r := newOursRunner(t, config{Mode: "fanout", Subs: 5, Publishers: 2, Rates: []float64{200}, Duration: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rs, err := r.runFanout(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res := rs[0]
	if res.Published < 150 || res.PublishErrors != 0 {
		t.Fatalf("published %d of ~200, errors %d", res.Published, res.PublishErrors)
	}
	if res.Lost != 0 || res.Dups != 0 {
		t.Fatalf("lost %d, duplicated %d", res.Lost, res.Dups)
	}
}

// With several addresses, users are spread round-robin by the number their
// name ends in, and each sticks to its instance.
func TestEndpointIndex(t *testing.T) {
	for i, want := range []int{0, 1, 0, 1} {
		if got := endpointIndex("cl-sub-"+strconv.Itoa(i), 2); got != want {
			t.Errorf("cl-sub-%d on %d, want %d", i, got, want)
		}
	}
	if endpointIndex("cl-pub-7", 3) != 1 || endpointIndex("cl-st123-10", 3) != 1 {
		t.Error("not the name's number modulo the instances")
	}
	if endpointIndex("cl-sub-5", 1) != 0 {
		t.Error("one instance: not 0")
	}
	counts := make([]int, 2)
	for _, u := range names("cl-mem-", 100) {
		counts[endpointIndex(u, 2)]++
	}
	if counts[0] != 50 || counts[1] != 50 {
		t.Errorf("100 members spread %v", counts)
	}
	if a, b := endpointIndex("alice", 2), endpointIndex("alice", 2); a != b {
		t.Error("a name without a number moved")
	}
}

func TestParseAddrsAndPIDs(t *testing.T) {
	a, err := parseAddrs("127.0.0.1:1, 127.0.0.1:2")
	if err != nil || len(a) != 2 || a[1] != "127.0.0.1:2" {
		t.Fatalf("parseAddrs = %q, %v", a, err)
	}
	if _, err := parseAddrs("127.0.0.1:1,10.0.0.1:2"); err == nil {
		t.Error("a non-loopback address in the list was accepted")
	}
	p, err := parsePIDs("12,34")
	if err != nil || len(p) != 2 || p[1] != 34 {
		t.Fatalf("parsePIDs = %v, %v", p, err)
	}
	if p, err := parsePIDs("0"); err != nil || len(p) != 0 {
		t.Errorf("-pid 0 = %v, %v; want none", p, err)
	}
}

// The write workload over two addresses (two proxies in front of one
// server): both carry connections, and nothing is lost or duplicated.
func TestWriteOverTwoAddresses(t *testing.T) {
	r := newOursRunner(t, config{Mode: "write", Members: 6, Posters: 3, Duration: time.Second,
		Addrs: []string{"a", "b"}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rs, err := r.runWrite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res := rs[0]
	if res.Acked == 0 || res.PublishErrors != 0 || res.Lost != 0 || res.Dups != 0 {
		t.Fatalf("acked %d, errors %d, lost %d, dups %d", res.Acked, res.PublishErrors, res.Lost, res.Dups)
	}
	if want := res.Acked * 6; res.Delivered != want {
		t.Fatalf("delivered %d, want %d", res.Delivered, want)
	}
	for _, h := range r.cfg.Addrs {
		v, _ := proxyConns.Load(h)
		// Per address: logins and joins (pooled), 3 streams, posts.
		if n := v.(*atomic.Int64).Load(); n < 3 {
			t.Errorf("%s carried %d connections", h, n)
		}
	}
}

// A keyed post carries its Idempotency-Key; an unkeyed one none.
func TestRoundTripSendsTheKey(t *testing.T) {
	keys := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys <- r.Header.Get("Idempotency-Key")
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pc := &postConn{conn: conn, br: bufio.NewReader(conn)}
	for _, key := range []string{"cl-1-7", ""} {
		if _, err := pc.roundTrip(context.Background(), host, "/api/rooms/bench/messages", "token", key, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		if got := <-keys; got != key {
			t.Fatalf("the server saw Idempotency-Key %q, want %q", got, key)
		}
	}
}
