package handlers

import (
	"net"
	"net/netip"
	"strings"

	"github.com/gin-gonic/gin"
)

// clientIP is the address limits and logs count a request against: the
// socket's peer, or, when that peer is one of the trusted proxies, the
// rightmost address of X-Forwarded-For that is not itself a trusted proxy.
// Anything left of that was written by the client and proves nothing.
func (s *Server) clientIP(c *gin.Context) netip.Addr {
	peer := remoteAddr(c.Request.RemoteAddr)
	if !s.trusted(peer) {
		return peer
	}
	hops := strings.Split(strings.Join(c.Request.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		addr, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer // a hop we cannot read: trust nothing left of it
		}
		addr = addr.Unmap()
		if !s.trusted(addr) {
			return addr
		}
	}
	return peer
}

// fromTrustedProxy reports whether the request's socket peer is a trusted
// proxy, whose X-Forwarded-* headers are believed.
func (s *Server) fromTrustedProxy(c *gin.Context) bool {
	return s.trusted(remoteAddr(c.Request.RemoteAddr))
}

func (s *Server) trusted(addr netip.Addr) bool {
	for _, p := range s.opts.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

func remoteAddr(hostPort string) netip.Addr {
	host, _, err := net.SplitHostPort(hostPort)
	if err != nil {
		host = hostPort
	}
	addr, _ := netip.ParseAddr(host)
	return addr.Unmap()
}
