package server_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/ssechat/ssechat/internal/chattest"
)

// The broker writes HTTP/1 streams itself, on the connection it took over
// from net/http, so the response's framing is its own work: HTTP/1.1 gets
// chunks, HTTP/1.0 (nginx's default towards upstreams) a body that ends
// when the connection closes. Both must say the connection ends with the
// stream. These tests read the response off the wire, as a proxy would.
func TestHTTP1StreamFraming(t *testing.T) {
	for _, tc := range []struct {
		proto       string
		wantChunked bool
	}{
		{"HTTP/1.1", true},
		{"HTTP/1.0", false},
	} {
		t.Run(tc.proto, func(t *testing.T) {
			srv := chattest.Start(t)
			alice, bob := srv.Login(t, "alice"), srv.Login(t, "bob")
			alice.Join("lobby")
			bob.Join("lobby")

			resp, frames := rawStream(t, srv.URL, tc.proto, alice.Token)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			chunked := slices.Equal(resp.TransferEncoding, []string{"chunked"})
			if chunked != tc.wantChunked {
				t.Fatalf("Transfer-Encoding %q, want chunked: %v", resp.TransferEncoding, tc.wantChunked)
			}
			if !resp.Close {
				t.Fatal("no Connection: close, but the connection ends with the stream")
			}
			if resp.ContentLength != -1 {
				t.Fatalf("Content-Length %d on an endless stream", resp.ContentLength)
			}
			for k, want := range map[string]string{
				"Content-Type":      "text/event-stream",
				"Cache-Control":     "no-cache",
				"X-Accel-Buffering": "no",
			} {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}

			next(t, frames, "ready")
			sent := bob.Say("lobby", "over "+tc.proto)
			for {
				f := next(t, frames, "")
				if f.Kind == "message" {
					if f.ID != sent.ID || f.Event.Text != sent.Text {
						t.Fatalf("got message %s %q, want %s %q", f.ID, f.Event.Text, sent.ID, sent.Text)
					}
					break
				}
			}
		})
	}
}

// rawStream writes a stream request in proto by hand and returns the
// response head and the frames of its body as they arrive.
func rawStream(t *testing.T, base, proto, token string) (*http.Response, <-chan chattest.Frame) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, chattest.Timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "GET /api/stream %s\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", proto, u.Host, token)
	conn.SetReadDeadline(time.Now().Add(chattest.Timeout))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read the response head: %v", err)
	}
	frames := make(chan chattest.Frame, 64)
	go func() {
		defer close(frames)
		// ReadResponse's body undoes the chunking, or reads to EOF.
		chattest.ReadFrames(resp.Body, func(f chattest.Frame) { frames <- f })
	}()
	return resp, frames
}

// next returns the next frame, which must be of kind unless kind is empty.
func next(t *testing.T, frames <-chan chattest.Frame, kind string) chattest.Frame {
	t.Helper()
	select {
	case f, ok := <-frames:
		if !ok {
			t.Fatal("the stream ended")
		}
		if kind != "" && f.Kind != kind {
			t.Fatalf("got a %q event, want %q", f.Kind, kind)
		}
		return f
	case <-time.After(chattest.Timeout):
		t.Fatalf("no %q event within %v", kind, chattest.Timeout)
	}
	return chattest.Frame{}
}
