package main

import (
	"context"
	"io"
	"log/slog"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// The soak end to end, tiny, so that it cannot rot: the built server with
// its limits on, about 50 connections for 3 s, the idle attacker over a
// per-address cap of 20, the flood over the message limit. It must pass:
// nothing missing, resources back, the attacker held, users served.
func TestSoakSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	bin := filepath.Join(t.TempDir(), "ssechat")
	_, file, _, _ := runtime.Caller(0)
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join(filepath.Dir(file), "..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfg, timeout, _, err := parseSoak([]string{
		"-server", bin, "-dir", t.TempDir(),
		"-users", "30", "-users-per-ip", "2", "-room-size", "10", "-rate", "20", "-duration", "3s",
		"-life-min", "500ms", "-life-max", "1500ms", "-hold-max", "1s", "-concurrency", "16",
		"-max-conns-per-ip", "20", "-attack-idle", "25", "-attack-redial", "50ms",
		"-flooders", "2", "-flood-rate", "100", "-settle", "30s", "-max-errors", "0",
		"-timeout", "2m",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	rep, err := runSoak(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if rep != nil {
		var b strings.Builder
		rep.write(&b, cfg)
		t.Log(b.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	// What passing must have been made of.
	switch {
	case rep.StreamsOpened <= int64(cfg.Users):
		t.Errorf("%d streams opened by %d users: no churn", rep.StreamsOpened, cfg.Users)
	case rep.Drops == 0 || rep.Vanished == 0:
		t.Errorf("drops: %d reset, %d vanished; want both kinds", rep.Drops, rep.Vanished)
	case rep.Acked == 0 || rep.Peak.Streams < float64(cfg.Users):
		t.Errorf("%d messages acknowledged, at most %v streams open", rep.Acked, rep.Peak.Streams)
	case rep.Flood429 == 0 || rep.RefusedByServer == 0:
		t.Errorf("the attacker got %d 429s and %v refused connections", rep.Flood429, rep.RefusedByServer)
	}
}

func TestParseStats(t *testing.T) {
	st := parseStats(`# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 42
process_open_fds 17
process_resident_memory_bytes 2.62144e+07
go_memstats_heap_inuse_bytes 1.048576e+06
ssechat_streams_open 3
ssechat_connections_refused_total{reason="per_ip"} 9
ssechat_rate_limited_total{limit="messages"} 4
`)
	want := serverStats{Goroutines: 42, FDs: 17, RSSMiB: 25, HeapMiB: 1, Streams: 3, Refused: 9}
	if st != want {
		t.Errorf("parseStats = %+v, want %+v", st, want)
	}
}

// A run that shows a loss, a leak or an attacker let through fails, each
// named.
func TestSoakChecks(t *testing.T) {
	cfg := soakConfig{SlackG: 10, SlackFD: 10, SlackHeapMiB: 32, MaxErrPct: 0.1, Flooders: 1, AttackIdle: 300, MaxConnsPerIP: 256}
	good := soakReport{
		Users: 10, FinalResumes: 10,
		Base:          serverStats{Goroutines: 20, FDs: 20, HeapMiB: 5},
		After:         serverStats{Goroutines: 25, FDs: 22, HeapMiB: 9},
		LegitRequests: 1000, LegitErrors: map[string]int64{"stream conn": 1},
		Flood429: 500, FloodOK: 100, FloodAllowed: 100, RefusedByServer: 7,
	}
	if bad := good.check(cfg); len(bad) != 0 {
		t.Fatalf("a good run fails: %v", bad)
	}
	for name, spoil := range map[string]func(r *soakReport){
		"missing":         func(r *soakReport) { r.Missing = 1 },
		"goroutines":      func(r *soakReport) { r.After.Goroutines = 31 },
		"descriptors":     func(r *soakReport) { r.After.FDs = 31 },
		"heap":            func(r *soakReport) { r.After.HeapMiB = 40 },
		"refused by":      func(r *soakReport) { r.LegitErrors = map[string]int64{"post 429": 1} },
		"requests":        func(r *soakReport) { r.LegitErrors = map[string]int64{"post conn": 2} },
		"never refused":   func(r *soakReport) { r.Flood429 = 0 },
		"got 103 posts":   func(r *soakReport) { r.FloodOK = 103 },
		"idle attacker":   func(r *soakReport) { r.RefusedByServer = 0 },
		"final resumes":   func(r *soakReport) { r.FinalResumes = 9 },
		"delivered twice": func(r *soakReport) { r.Dups = 1 },
	} {
		r := good
		spoil(&r)
		bad := r.check(cfg)
		if len(bad) != 1 || !strings.Contains(bad[0], name) {
			t.Errorf("%s: failures %q", name, bad)
		}
	}
}
