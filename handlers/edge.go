package handlers

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
)

// DefaultBodyTimeout is Options.BodyTimeout's zero value.
const DefaultBodyTimeout = 10 * time.Second

// httpsKey marks a request that came over HTTPS, here or to a trusted
// proxy (see overHTTPS); setSessionCookie makes the cookie Secure then.
const httpsKey = "https"

// useEdge installs, ahead of every other middleware, what every answer
// needs: our headers, the request body's deadline, HEAD on the GET routes.
// A path with a trailing slash it does not have is not redirected: it is
// an unknown route, answered (like every other) with a JSON 404 that
// carries those headers, where gin's redirect would carry none.
func (s *Server) useEdge(r *gin.Engine) {
	r.RedirectTrailingSlash = false
	r.Use(func(c *gin.Context) { s.edge(c, r) })
}

func (s *Server) edge(c *gin.Context, r *gin.Engine) {
	// On every answer: JSON, errors, static files and streams (the broker
	// sends the headers set so far with a stream's head).
	c.Header("X-Content-Type-Options", "nosniff")
	if s.overHTTPS(c) {
		c.Set(httpsKey, true)
	}
	switch {
	case isHEADOfGET(c):
		headAsGET(c, r)
	case c.Request.ContentLength != 0:
		s.bodyDeadline(c)
	default:
		c.Next()
	}
}

// overHTTPS reports whether the client's request came over TLS: to us, or
// to a trusted proxy that says so in X-Forwarded-Proto (the first value:
// the scheme the first proxy saw).
func (s *Server) overHTTPS(c *gin.Context) bool {
	if c.Request.TLS != nil {
		return true
	}
	if !s.fromTrustedProxy(c) {
		return false
	}
	proto, _, _ := strings.Cut(c.Request.Header.Get("X-Forwarded-Proto"), ",")
	return strings.EqualFold(strings.TrimSpace(proto), "https")
}

// isHEADOfGET reports whether c is a HEAD that gin routed to its 405
// handler because the path has a GET route (and no HEAD of its own).
// A stream has no HEAD: it would be opened, and taken over.
func isHEADOfGET(c *gin.Context) bool {
	return c.Request.Method == http.MethodHead && c.FullPath() == "" &&
		c.Writer.Status() == http.StatusMethodNotAllowed &&
		slices.Contains(strings.Split(c.Writer.Header().Get("Allow"), ", "), http.MethodGet) &&
		c.Request.URL.Path != "/api/stream"
}

// headAsGET serves a HEAD as the GET of the same path, through all of its
// route's middleware (authentication included). net/http drops the body,
// since it still holds the request as a HEAD, and sets Content-Length when
// the whole answer was buffered, as for a GET. The request's context says
// it was a HEAD (requestMethod), for the access log and the metrics: gin's
// Keys do not survive the second pass through the router.
func headAsGET(c *gin.Context, r *gin.Engine) {
	get := c.Request.WithContext(context.WithValue(c.Request.Context(), headKey{}, true))
	get.Method = http.MethodGet
	c.Request = get
	c.Writer.Header().Del("Allow")
	r.HandleContext(c)
	c.Abort()
}

// headKey marks the context of a HEAD served as a GET (headAsGET).
type headKey struct{}

// requestMethod is the method the client sent: HEAD for a HEAD that
// headAsGET turned into a GET for the router.
func requestMethod(r *http.Request) string {
	if r.Method == http.MethodGet && r.Context().Value(headKey{}) != nil {
		return http.MethodHead
	}
	return r.Method
}

// bodyDeadline gives the request's body BodyTimeout from now to arrive: a
// client that trickles it (a byte a second holds a goroutine and a socket
// for a day on a 64 KiB body) is answered 408 and its connection closed.
// A handler that answers without reading the body has its connection
// closed when net/http's drain of it times out.
//
// The deadline ends with the body: once it is read to its end, HTTP/1
// starts its read behind the handler (which notices a client hanging up)
// with no deadline, and HTTP/2's deadline can only close a body already
// at its end. So a handler may take as long as it needs after reading.
func (s *Server) bodyDeadline(c *gin.Context) {
	timeout := s.opts.BodyTimeout
	if timeout == 0 {
		timeout = DefaultBodyTimeout
	}
	rc := http.NewResponseController(c.Writer)
	if timeout < 0 || rc.SetReadDeadline(time.Now().Add(timeout)) != nil {
		c.Next() // off, or a writer without deadlines (a test's recorder)
		return
	}
	body := &deadlineBody{ReadCloser: c.Request.Body}
	c.Request.Body = body
	w := &slowBodyWriter{ResponseWriter: c.Writer, body: body, timeout: timeout, http1: c.Request.ProtoMajor == 1}
	c.Writer = w
	c.Next()
	if body.timedOut && !w.replaced {
		// The handler gave up without a word; gin would answer 200.
		s.log.Debug("request body too slow", "method", c.Request.Method, "path", c.Request.URL.Path, "client", s.clientIP(c))
		w.answer408()
	}
}

// deadlineBody notes when the body's deadline passed.
type deadlineBody struct {
	io.ReadCloser
	timedOut bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		b.timedOut = true
	}
	return n, err
}

// slowBodyWriter answers 408 in place of whatever the handler answers once
// the body's deadline passed: the handler sees only a failed read, which
// it would answer as malformed JSON.
type slowBodyWriter struct {
	gin.ResponseWriter
	body     *deadlineBody
	timeout  time.Duration
	http1    bool
	replaced bool
}

// Unwrap lets http.ResponseController (and the broker) reach the
// connection's writer.
func (w *slowBodyWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *slowBodyWriter) WriteHeader(code int) {
	if !w.replace() {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *slowBodyWriter) WriteHeaderNow() {
	if !w.replace() {
		w.ResponseWriter.WriteHeaderNow()
	}
}

func (w *slowBodyWriter) Write(p []byte) (int, error) {
	if w.replace() {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

func (w *slowBodyWriter) WriteString(s string) (int, error) {
	if w.replace() {
		return len(s), nil
	}
	return w.ResponseWriter.WriteString(s)
}

// replace answers 408 the first time it is called after the body timed
// out, and reports whether it did (or had): the handler's answer is then
// dropped.
func (w *slowBodyWriter) replace() bool {
	if !w.body.timedOut {
		return false
	}
	if !w.replaced {
		w.answer408()
	}
	return true
}

func (w *slowBodyWriter) answer408() {
	w.replaced = true
	if w.ResponseWriter.Written() {
		return // too late for a status: the connection closes after it
	}
	h := w.ResponseWriter.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", "application/json; charset=utf-8")
	if w.http1 {
		// The rest of the body may still be on its way: never read it
		// as the next request. (HTTP/2 resets the stream instead; there
		// "close" would end the connection, other tabs' streams and all.)
		h.Set("Connection", "close")
	}
	w.ResponseWriter.WriteHeader(http.StatusRequestTimeout)
	_, _ = w.ResponseWriter.WriteString(`{"error":"request body not received within ` + w.timeout.String() + `"}`)
}
