package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ssechat/ssechat/client"
)

// flaky answers each request with the next of its script: "drop" cuts the
// connection without an answer, a status answers it with a JSON error, 0
// answers 201 with an event; it records every request's Idempotency-Key.
type flaky struct {
	mu     sync.Mutex
	script []int
	keys   []string
}

const drop = -1

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.keys = append(f.keys, r.Header.Get("Idempotency-Key"))
	next := 0
	if len(f.script) > 0 {
		next, f.script = f.script[0], f.script[1:]
	}
	f.mu.Unlock()
	switch next {
	case drop:
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	case 0:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"id":"7","room":"lobby","from":"bob","text":"hi","ts":"2026-11-25T18:52:02.825Z"}`))
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(next)
		w.Write([]byte(`{"error":"try again"}`))
	}
}

func (f *flaky) set(script ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script = script
}

func (f *flaky) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.keys...)
}

// A post whose connection breaks, or that a proxy or a stopping server
// answers 502 or 503, is sent again with the same Idempotency-Key, so a
// server that stored it answers the retry with the same event; the next
// post has a key of its own.
func TestPostRetriesWithOneKey(t *testing.T) {
	f := &flaky{script: []int{drop, http.StatusBadGateway, http.StatusServiceUnavailable, 0, 0}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c := client.New(srv.URL, client.WithToken("tok"))
	t.Cleanup(c.CloseIdleConnections)
	e, err := c.Post(testCtx(t), "lobby", "hi")
	if err != nil || e.ID != "7" || e.Kind != client.KindMessage {
		t.Fatalf("post: %+v, %v", e, err)
	}
	if _, err := c.Send(testCtx(t), "bob", "hi"); err != nil {
		t.Fatal(err)
	}
	keys := f.requests()
	if len(keys) != 5 {
		t.Fatalf("%d requests, want 4 tries of the post and the send", len(keys))
	}
	if _, err := uuid.Parse(keys[0]); err != nil {
		t.Fatalf("Idempotency-Key %q is not a UUID", keys[0])
	}
	for _, k := range keys[1:4] {
		if k != keys[0] {
			t.Fatalf("keys of the tries %q, want one key", keys[:4])
		}
	}
	if keys[4] == keys[0] {
		t.Fatalf("the next message reused the key %s", keys[0])
	}
}

// Other refusals are not retried; neither is anything once the retry
// timeout or the context says so.
func TestRetryLimits(t *testing.T) {
	f := &flaky{script: []int{http.StatusInternalServerError}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c := client.New(srv.URL, client.WithToken("tok"))
	t.Cleanup(c.CloseIdleConnections)
	_, err := c.Post(testCtx(t), "lobby", "hi")
	apiError(t, "500", err, http.StatusInternalServerError, "try again")

	f.set(http.StatusServiceUnavailable, 0)
	_, err = client.New(srv.URL, client.WithRetryTimeout(0)).Rooms(testCtx(t))
	apiError(t, "503 without retries", err, http.StatusServiceUnavailable, "try again")

	f.set(drop, drop, drop, drop, drop, drop, drop, drop, drop, drop)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = c.Me(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("retrying until the context ended: %v, want DeadlineExceeded", err)
	}
}

// A login is sent once: a retry after a lost answer or a proxy's 502 or
// 504 would open a second session on the server and leave the first one
// live, its token held by nobody.
// A login the server surely did not act on is tried again: one answered
// 503, or one whose connection was never made (the server not up yet).
func TestLoginRetriedWhenUndone(t *testing.T) {
	var mu sync.Mutex
	var logins int
	answers := []int{http.StatusServiceUnavailable}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		logins++
		status := http.StatusOK
		if len(answers) > 0 {
			status, answers = answers[0], answers[1:]
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if status == http.StatusOK {
			w.Write([]byte(`{"token":"tok","username":"alice"}`))
		} else {
			w.Write([]byte(`{"error":"database unavailable"}`))
		}
	}))
	defer srv.Close()
	count := func() int { mu.Lock(); defer mu.Unlock(); return logins }

	c := client.New(srv.URL)
	defer c.CloseIdleConnections()
	if _, err := c.Login(testCtx(t), "alice", "pw-alice"); err != nil {
		t.Fatalf("login after a 503: %v", err)
	}
	if n := count(); n != 2 {
		t.Errorf("login sent %d times after a 503, want twice", n)
	}

	// Two connections refused (a port nobody listens on), then the server.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nobody := closed.Addr().String()
	closed.Close()
	var dials int
	var d net.Dialer
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials++; dials <= 2 {
			return d.DialContext(ctx, network, nobody)
		}
		return d.DialContext(ctx, network, addr)
	}}}
	late := client.New(srv.URL, client.WithHTTPClient(hc))
	defer late.CloseIdleConnections()
	if _, err := late.Login(testCtx(t), "alice", "pw-alice"); err != nil {
		t.Fatalf("login while the server was not reachable yet: %v", err)
	}
	if dials != 3 || count() != 3 {
		t.Errorf("%d dials, %d logins at the server; want 3 and 3", dials, count())
	}
}

func TestLoginIsNotRetried(t *testing.T) {
	for name, status := range map[string]int{"dropped": drop, "502": http.StatusBadGateway, "504": http.StatusGatewayTimeout} {
		f := &flaky{script: []int{status, 0}}
		srv := httptest.NewServer(f)
		c := client.New(srv.URL)
		if _, err := c.Login(testCtx(t), "alice", "pw-alice"); err == nil {
			t.Errorf("%s: login succeeded, want the first try's error", name)
		}
		if n := len(f.requests()); n != 1 {
			t.Errorf("%s: login sent %d times, want once", name, n)
		}
		c.CloseIdleConnections()
		srv.Close()
	}
}
