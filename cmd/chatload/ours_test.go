package main

import (
	"context"
	"io"
	"log/slog"
	"net/url"
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
	cfg.Target, cfg.Addr, cfg.Room = "ours", u.Host, "bench"
	cfg.Drain, cfg.ConnectWait, cfg.Concurrency = 10*time.Second, 10*time.Second, 8
	streams := max(cfg.Subs, cfg.Members)
	return &runner{cfg: cfg, col: col, log: log,
		sys: newOurs(u.Host, "secret-password", newDialers(1), sess, col, log, cfg.Concurrency, true, time.Second, streams)}
}

// The write workload against the real server: every POST is acknowledged
// and every member's stream receives every message exactly once.
func TestWriteAgainstOurServer(t *testing.T) {
	r := newOursRunner(t, config{Mode: "write", Members: 6, Posters: 3, Duration: time.Second})
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
