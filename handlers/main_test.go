package handlers_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test closes its servers and streams; whatever goroutine outlives
// them is a leak — a stream's writer or its hang-up reader above all.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Idle keep-alive connections of the tests' own HTTP client.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}
