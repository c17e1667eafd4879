package netguard

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serve runs an http.Server on a wrapped listener whose handler answers
// 200 "ok" with a Date, as every response of the server has, and returns
// its address.
func serve(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			io.WriteString(w, "ok")
		}),
		MaxHeaderBytes: 1 << 10,
	}
	go srv.Serve(Wrap(ln, 4, nil))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// exchange sends raw bytes on a new connection and reads the answer.
func exchange(t *testing.T, addr, request string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer to %.40q: %v", request, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// The answers net/http writes by itself come out as JSON, with their status.
func TestNetHTTPErrorsAreJSON(t *testing.T) {
	addr := serve(t)
	for _, tc := range []struct {
		name, request string
		status        int
		reason        string
	}{
		{"unparsable request line", "HELLO\r\n\r\n", 400, "bad request"},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", 400, "bad request: missing required host header"},
		{"headers too large", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 8<<10) + "\r\n\r\n", 431, "request header fields too large"},
		{"unknown transfer coding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: rot13\r\n\r\n", 501, "unsupported transfer encoding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := exchange(t, addr, tc.request)
			var body struct{ Error string }
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("status %d, body not JSON: %v", resp.StatusCode, err)
			}
			if resp.StatusCode != tc.status || body.Error != tc.reason {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, body.Error, tc.status, tc.reason)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("no nosniff")
			}
		})
	}
}

// A handler's own plain-text answer is written as it is, however it looks.
func TestResponsesPassThrough(t *testing.T) {
	resp := exchange(t, serve(t), "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "ok" || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("got %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
}

func TestPlainErrorIgnoresLookalikes(t *testing.T) {
	for _, p := range []string{
		"HTTP/1.1 200 OK\r\nDate: now\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nok",
		"HTTP/1.1 400 Bad Request" + plainErrorHeaders + "two\r\nlines",
		"HTTP/1.1 999 Nothing" + plainErrorHeaders + "999 Nothing",
		"HTTP/1.1 400 Bad Request" + plainErrorHeaders,
		"some body bytes",
	} {
		if _, _, ok := plainError([]byte(p)); ok {
			t.Errorf("plainError matched %q", p)
		}
	}
}
