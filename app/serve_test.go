package app_test

import (
	"testing"

	"github.com/ssechat/ssechat/app"
)

// --pprof serves heap, stacks and the command line: only on loopback.
func TestCheckLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:6060", true},
		{"127.1.2.3:6060", true},
		{"[::1]:6060", true},
		{"[::ffff:127.0.0.1]:6060", true},
		{"localhost:6060", true},
		{"127.0.0.1:0", true},
		{":6060", false},
		{"0.0.0.0:6060", false},
		{"[::]:6060", false},
		{"192.0.2.1:6060", false},
		{"10.0.0.1:6060", false},
		{"[2001:db8::1]:6060", false},
		{"127.0.0.1", false},
		{"6060", false},
		{"", false},
		{"no-such-host.invalid:6060", false},
	} {
		if err := app.CheckLoopback(tc.addr); (err == nil) != tc.ok {
			t.Errorf("CheckLoopback(%q) = %v, want ok %v", tc.addr, err, tc.ok)
		}
	}
}
