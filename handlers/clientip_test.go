package handlers

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/gin-gonic/gin"
)

// clientIP believes X-Forwarded-For only from a trusted proxy, and then
// only its rightmost hops: each trusted proxy appends the address it saw,
// so the first untrusted address from the right is the one a trusted
// proxy saw connect. Whatever is left of it the client wrote itself.
func TestClientIP(t *testing.T) {
	prefixes := func(ps ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, p := range ps {
			out = append(out, netip.MustParsePrefix(p))
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		peer    string
		xff     []string // one element per header line
		want    string
		proxy   bool // fromTrustedProxy
	}{
		{"no proxy, no header", nil, "203.0.113.5:1234", nil, "203.0.113.5", false},
		{"spoofed header, no proxies trusted", nil, "203.0.113.5:1234", []string{"198.51.100.7"}, "203.0.113.5", false},
		{"spoofed header from an untrusted peer", prefixes("10.0.0.0/8"), "203.0.113.5:1234", []string{"10.0.0.1, 198.51.100.7"}, "203.0.113.5", false},
		{"one trusted proxy", prefixes("10.0.0.1/32"), "10.0.0.1:40000", []string{"198.51.100.7"}, "198.51.100.7", true},
		{"one trusted proxy, client prepended a lie", prefixes("10.0.0.1/32"), "10.0.0.1:40000", []string{"1.1.1.1, 198.51.100.7"}, "198.51.100.7", true},
		{"client claims a trusted hop", prefixes("10.0.0.0/8"), "10.0.0.1:40000", []string{"10.0.0.9, 198.51.100.7"}, "198.51.100.7", true},
		{"two trusted proxies", prefixes("10.0.0.0/8"), "10.0.0.2:40000", []string{"6.6.6.6, 198.51.100.7, 10.0.0.1"}, "198.51.100.7", true},
		{"proxies of two networks", prefixes("10.0.0.0/8", "192.168.0.0/16"), "192.168.1.1:40000", []string{"198.51.100.7, 10.2.3.4"}, "198.51.100.7", true},
		{"hops over several header lines", prefixes("10.0.0.0/8"), "10.0.0.2:40000", []string{"6.6.6.6", "198.51.100.7, 10.0.0.1"}, "198.51.100.7", true},
		{"only trusted hops", prefixes("10.0.0.0/8"), "10.0.0.2:40000", []string{"10.0.0.3, 10.0.0.1"}, "10.0.0.2", true},
		{"trusted proxy, no header", prefixes("10.0.0.1/32"), "10.0.0.1:40000", nil, "10.0.0.1", true},
		{"trusted proxy, empty header", prefixes("10.0.0.1/32"), "10.0.0.1:40000", []string{""}, "10.0.0.1", true},
		{"spaces around hops", prefixes("10.0.0.1/32"), "10.0.0.1:40000", []string{"  198.51.100.7  "}, "198.51.100.7", true},
		{"garbage rightmost", prefixes("10.0.0.1/32"), "10.0.0.1:40000", []string{"198.51.100.7, not-an-ip"}, "10.0.0.1", true},
		{"garbage left of the client", prefixes("10.0.0.1/32"), "10.0.0.1:40000", []string{"<script>, 198.51.100.7"}, "198.51.100.7", true},
		{"garbage behind a trusted hop", prefixes("10.0.0.0/8"), "10.0.0.2:40000", []string{"198.51.100.7, bogus, 10.0.0.1"}, "10.0.0.2", true},
		{"hop with a port is garbage", prefixes("10.0.0.1/32"), "10.0.0.1:40000", []string{"198.51.100.7:5555"}, "10.0.0.1", true},
		{"trailing comma", prefixes("10.0.0.1/32"), "10.0.0.1:40000", []string{"198.51.100.7,"}, "10.0.0.1", true},
		{"IPv6 client behind an IPv6 proxy", prefixes("::1/128"), "[::1]:40000", []string{"2001:db8::7"}, "2001:db8::7", true},
		{"bracketed IPv6 hop is garbage", prefixes("::1/128"), "[::1]:40000", []string{"[2001:db8::7]"}, "::1", true},
		{"IPv4-mapped hop and peer", prefixes("10.0.0.1/32"), "[::ffff:10.0.0.1]:40000", []string{"::ffff:198.51.100.7"}, "198.51.100.7", true},
		{"IPv4-mapped trusted hop", prefixes("10.0.0.0/8"), "10.0.0.2:40000", []string{"198.51.100.7, ::ffff:10.0.0.1"}, "198.51.100.7", true},
		{"peer without a port", prefixes("10.0.0.1/32"), "10.0.0.1", []string{"198.51.100.7"}, "198.51.100.7", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{opts: Options{TrustedProxies: tc.trusted}}
			c, _ := gin.CreateTestContext(httptest.NewRecorder())
			c.Request = httptest.NewRequest("GET", "/api/rooms", nil)
			c.Request.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				c.Request.Header.Add("X-Forwarded-For", v)
			}
			if got := s.clientIP(c); got != netip.MustParseAddr(tc.want) {
				t.Errorf("clientIP = %s, want %s", got, tc.want)
			}
			if got := s.fromTrustedProxy(c); got != tc.proxy {
				t.Errorf("fromTrustedProxy = %v, want %v", got, tc.proxy)
			}
		})
	}
}

// X-Forwarded-Proto, like X-Forwarded-For, counts only from a trusted
// proxy: a client cannot make its cookie Secure, nor a proxy's client's
// not.
func TestOverHTTPS(t *testing.T) {
	s := &Server{opts: Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}}}
	for _, tc := range []struct {
		peer, proto string
		want        bool
	}{
		{"10.0.0.1:1", "https", true},
		{"10.0.0.1:1", "HTTPS", true},
		{"10.0.0.1:1", "https, http", true},
		{"10.0.0.1:1", "http", false},
		{"10.0.0.1:1", "", false},
		{"203.0.113.5:1", "https", false},
	} {
		c, _ := gin.CreateTestContext(httptest.NewRecorder())
		c.Request = httptest.NewRequest("GET", "/", nil)
		c.Request.RemoteAddr = tc.peer
		if tc.proto != "" {
			c.Request.Header.Set("X-Forwarded-Proto", tc.proto)
		}
		if got := s.overHTTPS(c); got != tc.want {
			t.Errorf("peer %s, X-Forwarded-Proto %q: overHTTPS = %v, want %v", tc.peer, tc.proto, got, tc.want)
		}
	}
}
