package handlers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ssechat/ssechat/app"
	"github.com/ssechat/ssechat/handlers"
	"github.com/ssechat/ssechat/internal/chattest"
	"github.com/ssechat/ssechat/internal/pgtest"
)

// readiness is /readyz's answer.
type readiness struct {
	Status string
	Error  string
	Checks map[string]string
}

// getReadyz returns /readyz's status and answer.
func getReadyz(t *testing.T, base string) (int, readiness) {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r readiness
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("/readyz: %d, not JSON: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, r
}

// waitReadyz polls /readyz until it answers status with the checks want.
func waitReadyz(t *testing.T, base string, status int, want map[string]string) {
	t.Helper()
	var got readiness
	var code int
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, got = getReadyz(t, base)
		if code == status && fmt.Sprint(got.Checks) == fmt.Sprint(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz: %d %+v, want %d with %v", code, got, status, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// /healthz and /readyz are public, answer as openapi.yaml says, and a
// lone SQLite server is ready.
func TestHealthAndReadiness(t *testing.T) {
	doc := loadSpec(t)
	srv := chattest.Start(t)
	s := newSpecClient(t, doc, srv.URL)
	var health struct{ Status string }
	if err := json.Unmarshal(s.do(call{method: "GET", path: "/healthz", wantStatus: 200}), &health); err != nil || health.Status != "ok" {
		t.Errorf("/healthz answered %+v, %v", health, err)
	}
	var ready readiness
	if err := json.Unmarshal(s.do(call{method: "GET", path: "/readyz", wantStatus: 200}), &ready); err != nil {
		t.Fatal(err)
	}
	if ready.Status != "ok" || fmt.Sprint(ready.Checks) != "map[store:ok]" {
		t.Errorf("/readyz answered %+v, want ok with the store alone checked", ready)
	}
}

// /readyz names what is down, and is ready again once it is back; a
// check that hangs is down after the timeout, not forever.
func TestReadyzNamesWhatIsDown(t *testing.T) {
	doc := loadSpec(t)
	var storeDown, redisHangs atomic.Bool
	r := handlers.New(slog.New(slog.DiscardHandler), nil, nil, nil, fstest.MapFS{}, handlers.Options{Ready: []handlers.ReadyCheck{
		{Name: "store", Ping: func(context.Context) error {
			if storeDown.Load() {
				return errors.New("connection refused")
			}
			return nil
		}},
		{Name: "redis", Ping: func(ctx context.Context) error {
			if redisHangs.Load() {
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		}},
	}})
	ts := httptest.NewServer(r)
	defer ts.Close()
	s := newSpecClient(t, doc, ts.URL)

	s.do(call{method: "GET", path: "/readyz", wantStatus: 200})
	storeDown.Store(true)
	var got readiness
	if err := json.Unmarshal(s.do(call{method: "GET", path: "/readyz", wantStatus: 503}), &got); err != nil {
		t.Fatal(err)
	}
	if got.Status != "unavailable" || got.Checks["store"] != "down" || got.Checks["redis"] != "ok" || got.Error != "unreachable: store" {
		t.Errorf("store down: %+v", got)
	}
	storeDown.Store(false)
	redisHangs.Store(true)
	start := time.Now()
	waitReadyz(t, ts.URL, 503, map[string]string{"store": "ok", "redis": "down"})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a hanging check held /readyz for %v", d)
	}
	redisHangs.Store(false)
	waitReadyz(t, ts.URL, 200, map[string]string{"store": "ok", "redis": "ok"})
	// Liveness checks nothing: it answers whatever is down.
	storeDown.Store(true)
	s.do(call{method: "GET", path: "/healthz", wantStatus: 200})
}

// The real thing: a server on its own PostgreSQL cluster and its own
// Redis turns unready when either stops, and ready when it is back.
func TestReadyzFollowsPostgreSQLAndRedis(t *testing.T) {
	dbURL, stopPG, startPG := pgtest.Start(t)
	redis := startRedis(t)
	srv := chattest.Start(t, chattest.WithDB(dbURL), func(cfg *app.Config) {
		cfg.Redis = redis.url()
	})
	waitReadyz(t, srv.URL, 200, map[string]string{"store": "ok", "redis": "ok"})

	redis.stop()
	waitReadyz(t, srv.URL, 503, map[string]string{"store": "ok", "redis": "down"})
	redis.start()
	waitReadyz(t, srv.URL, 200, map[string]string{"store": "ok", "redis": "ok"})

	stopPG()
	waitReadyz(t, srv.URL, 503, map[string]string{"store": "down", "redis": "ok"})
	startPG()
	waitReadyz(t, srv.URL, 200, map[string]string{"store": "ok", "redis": "ok"})
}

// privateRedis is a redis-server of the test's own on a free loopback
// port, which it may stop and start again on the same port.
type privateRedis struct {
	t    *testing.T
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
}

func startRedis(t *testing.T) *privateRedis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		pgtest.Missing(t, "no redis-server in the PATH")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	r := &privateRedis{t: t, bin: bin, dir: t.TempDir(), port: port}
	r.start()
	// Runs after the server's own cleanup (registered later, run
	// earlier): its goodbye needs Redis.
	t.Cleanup(r.stop)
	return r
}

func (r *privateRedis) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

func (r *privateRedis) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.port))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server does not listen on %d: %v", r.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills the server, as a crash would.
func (r *privateRedis) stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}
