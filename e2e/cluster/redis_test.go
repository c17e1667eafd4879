//go:build unix

package cluster_test

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// privateRedis is a redis-server of the test's own, which it may stop and
// start to play an outage; the shared one on 6379 is never touched.
type privateRedis struct {
	*process
	bin  string
	dir  string
	port int
}

// startPrivateRedis runs redis-server on a free loopback port, keeping
// nothing on disk: a restart comes back empty, as after a crash.
func startPrivateRedis(t testing.TB) *privateRedis {
	t.Helper()
	r := &privateRedis{bin: needProgram(t, "redis-server"), dir: t.TempDir()}
	r.process = newProcess(t, "redis-server")
	for attempt := 1; ; attempt++ {
		r.port = freePort(t)
		if err := r.run(); err == nil {
			return r
		} else if attempt == 3 {
			t.Fatalf("redis-server did not start: %v\n%s", err, r.output())
		}
	}
}

// URL is the server's redis:// URL.
func (r *privateRedis) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

// run starts the server on its port and waits until it answers PING.
func (r *privateRedis) run() error {
	r.start(nil, r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir)
	deadline := time.Now().Add(startTimeout)
	for {
		_, err := redisDo(r.URL(), "PING")
		if err == nil {
			return nil
		}
		if !r.alive() || time.Now().After(deadline) {
			r.kill()
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// crash kills the server: every connection drops, every key is lost.
func (r *privateRedis) crash() {
	r.t.Helper()
	r.kill()
	if _, err := redisDo(r.URL(), "PING"); err == nil {
		r.t.Fatal("redis still answers after kill")
	}
}

// restart starts the server again, empty, on the port it had.
func (r *privateRedis) restart() {
	r.t.Helper()
	if err := r.run(); err != nil {
		r.t.Fatalf("restart redis-server on %d: %v\n%s", r.port, err, r.output())
	}
}
