package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// profiler fetches the server's pprof profiles (its --pprof listener) while
// a workload runs, so a missed target comes with the profile that explains it.
type profiler struct {
	base string // http://127.0.0.1:6060, empty = off
	dir  string
	name string // file name prefix, from the label and target
}

// cpu starts a CPU profile of d and returns a func that waits for it and
// reports where it was written.
func (p *profiler) cpu(ctx context.Context, tag string, d time.Duration) func() string {
	if p.base == "" {
		return func() string { return "" }
	}
	secs := int(d.Seconds())
	if secs < 1 {
		secs = 1
	}
	done := make(chan string, 1)
	go func() {
		done <- p.fetch(ctx, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), tag+".cpu.pprof", d+30*time.Second)
	}()
	return func() string { return <-done }
}

// goroutinesAt fetches a goroutine dump (grouped stacks) after d: it shows
// where requests wait when the server is slow but not busy, which a CPU
// profile cannot.
func (p *profiler) goroutinesAt(ctx context.Context, tag string, d time.Duration) {
	if p.base == "" {
		return
	}
	go func() {
		if sleepCtx(ctx, d) == nil {
			p.fetch(ctx, "/debug/pprof/goroutine?debug=1", tag+".goroutines.txt", 30*time.Second)
		}
	}()
}

// heap fetches a heap profile now.
func (p *profiler) heap(ctx context.Context, tag string) string {
	if p.base == "" {
		return ""
	}
	return p.fetch(ctx, "/debug/pprof/heap", tag+".heap.pprof", 30*time.Second)
}

func (p *profiler) fetch(ctx context.Context, path, file string, timeout time.Duration) string {
	if p.base == "" {
		return ""
	}
	if err := checkLoopback(strings.TrimPrefix(p.base, "http://")); err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	if err != nil {
		return ""
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	name := filepath.Join(p.dir, p.name+"-"+file)
	f, err := os.Create(name)
	if err != nil {
		return ""
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return ""
	}
	if f.Close() != nil {
		return ""
	}
	return name
}

// fileSafe turns a label into a file name part.
func fileSafe(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}
