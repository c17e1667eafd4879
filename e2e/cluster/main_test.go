//go:build unix

// Package cluster_test runs the built ssechat binary as several instances
// on one PostgreSQL schema and one Redis prefix, with nginx from
// deploy/nginx.conf in front, and proves that the cluster keeps every
// single-node promise: one order of ids everywhere, resume on any instance,
// presence and logouts across instances, nothing acknowledged lost when an
// instance dies or Redis or PostgreSQL goes away for a while.
//
// Tests skip when PostgreSQL (CHAT_POSTGRES_URL, default the local server's
// database test), Redis (CHAT_REDIS_URL, default 127.0.0.1:6379) or nginx is
// missing, unless CHAT_REQUIRE_SERVICES=1, as in CI, where they fail.
package cluster_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// serverBin is the ssechat command, built once for the package's tests.
var serverBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ssechat-cluster-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	serverBin = filepath.Join(dir, "ssechat")
	build := exec.Command("go", "build", "-o", serverBin, ".")
	build.Dir = repoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	// Every test ends its processes, streams and clients; a goroutine
	// that outlives them is a leak.
	goleak.VerifyTestMain(m,
		// Idle keep-alive connections of the tests' own HTTP clients.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.Cleanup(func(code int) {
			os.RemoveAll(dir)
			os.Exit(code)
		}),
	)
}

// repoRoot is the module's directory, found from this source file.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// clusterFlags tells whether the built server has the cluster flags
// (--redis, --redis-prefix): until it does, the cluster tests fail at once
// with that message instead of each timing out on a server that exits.
func clusterFlags() error {
	out, _ := exec.Command(serverBin, "--help").CombinedOutput()
	for _, flag := range []string{"-redis ", "-redis-prefix "} {
		if !strings.Contains(string(out), flag) {
			return fmt.Errorf("the server has no %s flag (the cluster mode has not landed)", strings.TrimSpace(flag))
		}
	}
	return nil
}
