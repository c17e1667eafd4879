package edge_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/ssechat/ssechat/app"
)

func mustUnmarshal(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decode %q: %v", data, err)
	}
}

// trickle sends head, then one byte of body (piece) every tick until the
// server stops reading or stop closes; it returns when it has stopped.
func trickle(c *rawConn, head, piece string, tick time.Duration, stop <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.SetWriteDeadline(time.Now().Add(time.Minute))
		if _, err := io.WriteString(c, head); err != nil {
			return
		}
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			if _, err := io.WriteString(c, piece); err != nil {
				return
			}
			select {
			case <-t.C:
			case <-stop:
				return
			}
		}
	}()
	return done
}

// A request body that trickles in (a byte every 100 ms) is cut once the
// body timeout has passed: a route that reads the body answers 408 with
// a JSON error and closes the connection; one that answered without
// reading it closes the connection when draining it times out. Meanwhile
// everyone else is served.
func TestSlowBodyIsCut(t *testing.T) {
	const bodyTimeout = 2 * time.Second
	srv := start(t, func(c *app.Config) { c.HTTP.BodyTimeout = bodyTimeout })
	hc := client(t, "")
	alice, _ := login(t, hc, srv.URL, "alice")
	mustDo(t, hc, http.StatusOK, "POST", srv.URL+"/api/rooms/lobby/join", alice, "")

	type result struct {
		status  int
		body    []byte
		close   bool
		elapsed time.Duration // until the answer
		closed  time.Duration // until the server closed the connection
		err     error
	}
	cases := []struct {
		name, head, piece string
		want              int
	}{
		{"login", request("POST", "/api/login", "", "Content-Type", "application/json", "Content-Length", "100") + "{", " ", http.StatusRequestTimeout},
		{"chunked room message", request("POST", "/api/rooms/lobby/messages", alice, "Content-Type", "application/json", "Transfer-Encoding", "chunked") + "1\r\n{\r\n", "1\r\n \r\n", http.StatusRequestTimeout},
		{"private message", request("POST", "/api/users/alice/messages", alice, "Content-Type", "application/json", "Content-Length", "100") + "{", " ", http.StatusRequestTimeout},
		{"join, which reads no body", request("POST", "/api/rooms/lobby/join", alice, "Content-Type", "application/json", "Content-Length", "100") + "{", " ", http.StatusOK},
	}
	stop := make(chan struct{})
	results := make([]chan result, len(cases))
	var stopped []<-chan struct{}
	for i, tc := range cases {
		results[i] = make(chan result, 1)
		c := dial(t, srv.Addr, "")
		began := time.Now()
		stopped = append(stopped, trickle(c, tc.head, tc.piece, 100*time.Millisecond, stop))
		go func() {
			var r result
			_ = c.SetReadDeadline(time.Now().Add(10 * bodyTimeout))
			resp, err := http.ReadResponse(c.br, &http.Request{Method: "POST"})
			if err != nil {
				r.err = fmt.Errorf("read response: %w", err)
				results[i] <- r
				return
			}
			r.status, r.close, r.elapsed = resp.StatusCode, resp.Close, time.Since(began)
			r.body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if n, err := c.br.Read(make([]byte, 1)); n > 0 || !closedByPeer(err) {
				r.err = fmt.Errorf("after the answer: read %d bytes, %v; want the connection closed", n, err)
			}
			r.closed = time.Since(began)
			results[i] <- r
		}()
	}
	defer func() {
		close(stop)
		for _, s := range stopped {
			<-s
		}
	}()

	// While they trickle, others log in, post and read.
	bob, _ := login(t, hc, srv.URL, "bob")
	mustDo(t, hc, http.StatusOK, "POST", srv.URL+"/api/rooms/lobby/join", bob, "")
	mustDo(t, hc, http.StatusCreated, "POST", srv.URL+"/api/rooms/lobby/messages", bob, `{"text":"not waiting"}`)
	mustDo(t, hc, http.StatusOK, "GET", srv.URL+"/api/rooms/lobby/messages", alice, "")
	for i, tc := range cases {
		if tc.want != http.StatusRequestTimeout {
			continue
		}
		select {
		case r := <-results[i]:
			t.Fatalf("%s answered %d after %v, before the others were served", tc.name, r.status, r.elapsed)
		default:
		}
	}

	for i, tc := range cases {
		r := <-results[i]
		if r.err != nil {
			t.Errorf("%s: %v", tc.name, r.err)
			continue
		}
		if r.status != tc.want {
			t.Errorf("%s: status %d, want %d: %s", tc.name, r.status, tc.want, r.body)
			continue
		}
		if r.closed > bodyTimeout+5*time.Second {
			t.Errorf("%s: connection closed after %v, body timeout %v", tc.name, r.closed, bodyTimeout)
		}
		if tc.want != http.StatusRequestTimeout {
			continue
		}
		if !isJSONError(r.body) || !r.close {
			t.Errorf("%s: 408 with body %q, Connection: close %v; want a JSON error and close", tc.name, r.body, r.close)
		}
		if r.elapsed < bodyTimeout {
			t.Errorf("%s: 408 after %v, before the body timeout of %v", tc.name, r.elapsed, bodyTimeout)
		}
	}
}
