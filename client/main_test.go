package client_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test ends its subscriptions and servers; a goroutine that outlives
// them (r3labs/sse's reader above all) is a leak.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Idle keep-alive connections of HTTP clients.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}
