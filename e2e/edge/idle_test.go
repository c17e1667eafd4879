package edge_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/ssechat/ssechat/app"
	"github.com/ssechat/ssechat/internal/chattest"
)

// A keep-alive connection that sends no next request is closed after the
// idle timeout; a stream's connection, which never sends another request
// either, is not: it is the broker's.
func TestIdleConnectionClosed(t *testing.T) {
	const idle = 300 * time.Millisecond
	srv := start(t, func(c *app.Config) { c.IdleTimeout = idle })
	hc := client(t, "")
	alice, _ := login(t, hc, srv.URL, "alice")
	mustDo(t, hc, http.StatusOK, "POST", srv.URL+"/api/rooms/lobby/join", alice, "")
	stream := openStream(t, srv.Addr, "", alice)
	stream.Ready()

	c := dial(t, srv.Addr, "")
	for range 2 { // keep-alive: both go on the one connection
		c.send(t, request("GET", "/api/rooms", alice))
		if resp, body := c.response(t, "GET"); resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("GET /api/rooms: %d (close %v): %s", resp.StatusCode, resp.Close, body)
		}
	}
	waited := c.waitClosed(t)
	if waited < idle*2/3 {
		t.Fatalf("idle connection closed after %v, before the idle timeout of %v", waited, idle)
	}

	// More than the idle timeout has passed since the stream opened. (A
	// new client: hc's pooled connection has been closed as idle too, and
	// a POST sent on it as the server closes it is not retried: the race a
	// proxy in front avoids by closing its idle connections first.)
	var e chattest.Event
	_, body := mustDo(t, client(t, ""), http.StatusCreated, "POST", srv.URL+"/api/rooms/lobby/messages", alice, `{"text":"still here"}`)
	mustUnmarshal(t, body, &e)
	stream.Expect("message", func(got chattest.Event) bool { return got.ID == e.ID && got.Text == "still here" })
}
