// Package edge_test proves, against the real server as main serves it
// (app.Serve on a loopback listener), what the edge promises a client:
// idle connections are closed, a trickling request body is cut with a
// 408, one address cannot hold more than its share of connections, every
// answer carries our headers, HEAD works on GET routes, the SQLite files
// are private, and HTTPS serves HTTP/2 streams.
package edge_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test closes its servers, streams and connections; a goroutine
// that outlives them is a leak.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
