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

			stream := rawStream(t, srv.URL, tc.proto, alice.Token)
			resp := stream.Resp
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

			if first := stream.Next(); first.Kind != "ready" {
				t.Fatalf("the stream starts with %q, want ready", first.Kind)
			}
			sent := bob.Say("lobby", "over "+tc.proto)
			got := stream.Expect("message", nil)
			if got.ID != sent.ID || got.Event.Text != sent.Text {
				t.Fatalf("got message %s %q, want %s %q", got.ID, got.Event.Text, sent.ID, sent.Text)
			}
		})
	}
}

// rawStream writes a stream request in proto by hand and reads the
// response off the connection.
func rawStream(t *testing.T, base, proto, token string) *chattest.Stream {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, chattest.Timeout)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /api/stream %s\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", proto, u.Host, token)
	conn.SetReadDeadline(time.Now().Add(chattest.Timeout))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		conn.Close()
		t.Fatalf("read the response head: %v", err)
	}
	// The body undoes the chunking, or reads to EOF; closing the
	// connection ends it.
	return chattest.ReadStream(t, resp, func() { conn.Close() })
}
