package browser

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is an HTTP proxy in front of the server that notes every request
// a page makes (when, method, path and query, Idempotency-Key), so a test
// can assert on what the page asked the server for and when.
type recorder struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []seenRequest
	// lose, when set, picks requests whose answers are lost: the request
	// reaches the server and is answered there, then the connection to the
	// page is closed without a byte of the answer, as when a network drops
	// between the server's answer and the browser.
	lose func(method, path string) bool
}

type seenRequest struct {
	at     time.Time
	method string
	path   string // with the query, if any
	key    string // the Idempotency-Key header
	status int    // the server's answer, once it is known
	lost   bool   // the page never got the answer
}

func startRecorder(t *testing.T, target string) *recorder {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatalf("recorder target: %v", err)
	}
	r := &recorder{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		i := len(r.seen)
		r.seen = append(r.seen, seenRequest{at: time.Now(), method: req.Method, path: req.URL.RequestURI(), key: req.Header.Get("Idempotency-Key")})
		lose := r.lose != nil && r.lose(req.Method, req.URL.Path)
		r.mu.Unlock()
		if lose {
			answer := httptest.NewRecorder()
			proxy.ServeHTTP(answer, req)
			r.note(i, answer.Code, true)
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		proxy.ServeHTTP(sw, req)
		r.note(i, sw.status, false)
	}))
	t.Cleanup(func() {
		r.srv.CloseClientConnections() // the pages' streams
		r.srv.Close()
	})
	return r
}

func (r *recorder) url() string { return r.srv.URL }

// loseAnswers makes the answers to the requests lose picks go missing
// (nil: none).
func (r *recorder) loseAnswers(lose func(method, path string) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lose = lose
}

func (r *recorder) note(i, status int, lost bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen[i].status = status
	r.seen[i].lost = lost
}

// statusWriter notes the status of an answer on its way to the page.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets the proxy flush the streams through it.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// requests lists what was asked for at or after since whose path (and
// query) starts with prefix.
func (r *recorder) requests(since time.Time, method, prefix string) []seenRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []seenRequest
	for _, s := range r.seen {
		if !s.at.Before(since) && s.method == method && strings.HasPrefix(s.path, prefix) {
			out = append(out, s)
		}
	}
	return out
}
