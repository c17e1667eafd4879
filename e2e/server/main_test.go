// Package server_test proves the "nothing lost" promises of issue 3 against
// the real service: resume with Last-Event-ID, every reset case, retention,
// slow consumers, and the built binary surviving SIGKILL and SIGTERM.
package server_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test closes its servers, streams and processes; a goroutine that
// outlives them is a leak.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Idle keep-alive connections of the tests' own HTTP client.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}
