//go:build unix

package client_test

import (
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ssechat/ssechat/client"
	"github.com/ssechat/ssechat/internal/chattest"
)

// The built server is killed with SIGKILL while alice's subscription is
// open and started again on the same address and database; bob posts
// before, while it is down (the client retries until it is back) and
// after. Alice's handler gets every message exactly once, in order, and
// then the server stops with SIGTERM: her handler gets its shutdown, and
// she resumes on the next server without a gap.
func TestSurvivesServerKillAndRestart(t *testing.T) {
	bin := chattest.BuildServer(t)
	db := filepath.Join(t.TempDir(), "chat.db")
	first := chattest.StartProc(t, bin, db)
	addr := strings.TrimPrefix(first.URL, "http://")
	restart := func() *chattest.Proc {
		t.Helper()
		// The same port: the clients know the server by its address.
		return chattest.StartProc(t, bin, db, "--addr", addr)
	}

	alice, bob := lobby(t, first.URL)
	reasons := make(chan error, 100)
	s := subscribe(t, alice, client.OnReconnect(func(err error, _ time.Duration) { reasons <- err }))
	live(s, "alice")

	var want []client.Event
	want = append(want, say(t, bob, "before", 20)...)
	// Kill it while some are on their way to alice, or not: both happen.
	s.expect(client.KindMessage, func(e client.Event) bool { return e.ID == want[4].ID })
	first.Signal(syscall.SIGKILL)
	first.Wait()
	select {
	case <-reasons:
	case <-time.After(chattest.Timeout):
		t.Fatalf("the subscription did not notice the server's death within %v", chattest.Timeout)
	}

	// Posted while nothing listens: Post retries until the server is back.
	// (Every try is refused before it reaches a server, so none is stored
	// twice whether or not the server keeps idempotency keys.)
	type result struct {
		e   client.Event
		err error
	}
	tries := &failures{base: http.DefaultTransport.(*http.Transport).Clone()}
	t.Cleanup(tries.base.CloseIdleConnections)
	retrying := client.New(first.URL, client.WithToken(bob.Token()), client.WithHTTPClient(&http.Client{Transport: tries}))
	down := make(chan result, 1)
	go func() {
		e, err := retrying.Post(testCtx(t), "lobby", "while down")
		down <- result{e, err}
	}()
	// The restart must not beat the post's first try.
	chattest.Eventually(t, "the post to fail", func() bool { return tries.n.Load() > 0 })
	second := restart()
	r := <-down
	if r.err != nil {
		t.Fatalf("post while the server was down: %v", r.err)
	}
	want = append(want, r.e)
	want = append(want, say(t, bob, "after", 20)...)

	// Those up to want[4] were read before the kill.
	sameEvents(t, "messages across kill -9", messagesUntil(s, want[len(want)-1]), want[5:])

	// A graceful restart: the handler is told, and nothing is lost.
	second.Signal(syscall.SIGTERM)
	if err := second.Wait(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	s.expect(client.KindShutdown, nil)
	restart()
	after := say(t, bob, "after the restart", 5)
	sameEvents(t, "messages across SIGTERM", messagesUntil(s, after[len(after)-1]), after)

	var silent int
	for len(reasons) > 0 {
		if errors.Is(<-reasons, client.ErrSilent) {
			silent++
		}
	}
	if silent > 0 {
		t.Errorf("%d reconnections for silence: the server's heartbeats should have kept the stream", silent)
	}
}

// failures is a transport that counts the requests that failed to reach
// a server.
type failures struct {
	base *http.Transport
	n    atomic.Int32
}

func (f *failures) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := f.base.RoundTrip(req)
	if err != nil {
		f.n.Add(1)
	}
	return resp, err
}
