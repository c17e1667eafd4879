package handlers

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// Metrics counts what the HTTP edge sees. Its methods are called on every
// request, concurrently, and must be cheap.
type Metrics interface {
	// ObserveRequest records one answered request. route is the pattern
	// of the route that matched ("/api/rooms/:room/messages"), "" when
	// none did: never the raw path, whose values are unbounded.
	ObserveRequest(route, method string, status int, d time.Duration)
	// RateLimited counts one request refused by the rate limit named
	// limit. Names are label values: use a small fixed set.
	RateLimited(limit string)
}

// rateLimited counts a refusal by the rate limit named limit, if metrics
// are on: what a rate limit calls when it refuses a request.
func (s *Server) rateLimited(limit string) {
	if s.opts.Metrics != nil {
		s.opts.Metrics.RateLimited(limit)
	}
}

// streamRoute is served for hours: its duration says nothing.
const streamRoute = "/api/stream"

// observe times every request for the metrics and, with
// Options.AccessLog, logs one line per request at info level: method,
// route (the pattern, never the raw path; the path only when no route
// matched), status, duration, client IP (see clientIP) and bytes of body.
// Never a header, a query, a body or a cookie: tokens, passwords and
// messages travel there.
//
// A stream's line is written when its handler returns: at once for an
// HTTP/1 stream, which the broker takes over from net/http (bytes 0), at
// its end for HTTP/2. An open stream is not observed in the request
// durations (ssechat_streams_open counts them); a refused one is.
func (s *Server) observe(c *gin.Context) {
	if s.opts.Metrics == nil && !s.opts.AccessLog {
		c.Next()
		return
	}
	start := time.Now()
	c.Next()
	d := time.Since(start)
	route, status, method := c.FullPath(), c.Writer.Status(), requestMethod(c.Request)
	if s.opts.Metrics != nil && (route != streamRoute || status != http.StatusOK) {
		s.opts.Metrics.ObserveRequest(route, methodLabel(method), status, d)
	}
	if !s.opts.AccessLog {
		return
	}
	attrs := make([]slog.Attr, 0, 7)
	attrs = append(attrs, slog.String("method", method), slog.String("route", route))
	if route == "" {
		attrs = append(attrs, slog.String("path", c.Request.URL.Path))
	}
	attrs = append(attrs,
		slog.Int("status", status),
		slog.Duration("duration", d),
		slog.String("ip", s.clientIP(c).String()),
		slog.Int("bytes", max(0, c.Writer.Size())),
	)
	s.log.LogAttrs(c.Request.Context(), slog.LevelInfo, "request", attrs...)
}

// methodLabel keeps the method label's values to the methods HTTP
// defines: a client may send any token as its method.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}
