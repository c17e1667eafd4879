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
}

type seenRequest struct {
	at     time.Time
	method string
	path   string // with the query, if any
	key    string // the Idempotency-Key header
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
		r.seen = append(r.seen, seenRequest{at: time.Now(), method: req.Method, path: req.URL.RequestURI(), key: req.Header.Get("Idempotency-Key")})
		r.mu.Unlock()
		proxy.ServeHTTP(w, req)
	}))
	t.Cleanup(func() {
		r.srv.CloseClientConnections() // the pages' streams
		r.srv.Close()
	})
	return r
}

func (r *recorder) url() string { return r.srv.URL }

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
