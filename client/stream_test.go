package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ssechat/ssechat/broker"
	"github.com/ssechat/ssechat/client"
	"github.com/ssechat/ssechat/internal/chattest"
)

// lobby logs alice and bob in, both in the lobby.
func lobby(t testing.TB, base string) (alice, bob *client.Client) {
	t.Helper()
	alice, bob = login(t, base, "alice"), login(t, base, "bob")
	for _, c := range []*client.Client{alice, bob} {
		if _, err := c.Join(testCtx(t), "lobby"); err != nil {
			t.Fatal(err)
		}
	}
	return alice, bob
}

// live waits until s is live: its ready, then its user's own online
// presence, which comes in the snapshot or right after it. It returns the
// id of the last event read, where a resume would start.
func live(s *sub, user string) string {
	s.t.Helper()
	s.expect(client.KindReady, nil)
	return s.expect(client.KindPresence, func(e client.Event) bool { return e.User == user && e.Status == "online" }).ID
}

// say posts n messages to the lobby as c and returns them.
func say(t testing.TB, c *client.Client, prefix string, n int) []client.Event {
	t.Helper()
	var out []client.Event
	for i := range n {
		e, err := c.Post(testCtx(t), "lobby", fmt.Sprintf("%s %d", prefix, i))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// messagesUntil reads s up to the message last and returns the message
// and private events read, stream data dropped so they compare with
// what the posts answered.
func messagesUntil(s *sub, last client.Event) []client.Event {
	s.t.Helper()
	var out []client.Event
	for _, e := range s.until(func(e client.Event) bool { return e.ID == last.ID && e.Kind == last.Kind }) {
		if e.Kind == client.KindMessage || e.Kind == client.KindPrivate {
			e.Data = ""
			out = append(out, e)
		}
	}
	return out
}

// sameEvents fails unless got equals want, one by one.
func sameEvents(t testing.TB, what string, got, want []client.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d events (%s), want %d (%s)", what, len(got), kinds(got), len(want), kinds(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: event %d is\n%+v, want\n%+v", what, i, got[i], want[i])
		}
	}
}

// A program that keeps the id of the last event it handled resumes from
// it after its own restart: what it missed, once each, in order, then
// ready.
func TestResumeFrom(t *testing.T) {
	srv := chattest.Start(t)
	alice, bob := lobby(t, srv.URL)
	s := subscribe(t, alice)
	live(s, "alice")
	seen := say(t, bob, "seen", 2)
	messagesUntil(s, seen[1])
	last := seen[0].ID // as if the program died before handling the second
	s.stop()

	missed := say(t, bob, "missed", 3)
	private, err := bob.Send(testCtx(t), "alice", "psst")
	if err != nil {
		t.Fatal(err)
	}
	want := append(append(seen[1:], missed...), private)

	s = subscribe(t, alice, client.ResumeFrom(last))
	backlog := s.until(func(e client.Event) bool { return e.Kind == client.KindReady })
	var got []client.Event
	for _, e := range backlog[:len(backlog)-1] {
		e.Data = ""
		got = append(got, e)
	}
	sameEvents(t, "resumed backlog", got, want)
	if ready := backlog[len(backlog)-1]; ready.ID != private.ID {
		t.Fatalf("ready at %s, want %s", ready.ID, private.ID)
	}
	after := say(t, bob, "live", 1)
	sameEvents(t, "live after the resume", messagesUntil(s, after[0]), after)
}

// When the server cannot fill the gap, the program is told with a reset
// (and reloads history); what follows is delivered, even when the log's
// ids are below any the program saw before (a database replaced under it).
func TestReset(t *testing.T) {
	srv := chattest.Start(t, chattest.WithBroker(broker.Config{ReplayLimit: 3}))
	alice, bob := lobby(t, srv.URL)
	s := subscribe(t, alice)
	last := live(s, "alice")
	s.stop()
	missed := say(t, bob, "missed", 4)
	head := missed[len(missed)-1].ID

	for _, from := range []string{last, "999999"} {
		s := subscribe(t, alice, client.ResumeFrom(from))
		start := s.until(func(e client.Event) bool { return e.Kind == client.KindReady })
		if len(start) != 2 || start[0].Kind != client.KindReset || start[0].ID != head || start[0].Reason == "" {
			t.Fatalf("resume from %s began %s (%+v), want reset at %s then ready", from, kinds(start), start[0], head)
		}
		after := say(t, bob, "after the reset from "+from, 1)
		sameEvents(t, "after the reset from "+from, messagesUntil(s, after[0]), after)
		s.stop()
		head = after[0].ID
	}
}

// proxy forwards TCP connections to a server and can go silent on the
// ones open: it keeps them open but forwards nothing more to the client,
// as a proxy or network that lost a stream without closing it.
type proxy struct {
	URL      string
	ln       net.Listener
	backend  string
	accepted atomic.Int32
	wg       sync.WaitGroup

	mu     sync.Mutex
	conns  []net.Conn
	frozen []chan struct{}
}

func startProxy(t testing.TB, backendURL string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{URL: "http://" + ln.Addr().String(), ln: ln, backend: strings.TrimPrefix(backendURL, "http://")}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		s, err := net.Dial("tcp", p.backend)
		if err != nil {
			c.Close()
			continue
		}
		frozen := make(chan struct{})
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.frozen = append(p.frozen, frozen)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			io.Copy(s, c)
			s.Close()
			c.Close()
		}()
		go func() {
			defer p.wg.Done()
			defer c.Close()
			defer s.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := s.Read(buf)
				select {
				case <-frozen: // read on, so the server is not held up
				default:
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// freeze silences the connections open now.
func (p *proxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.frozen {
		select {
		case <-f:
		default:
			close(f)
		}
	}
}

func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// A stream that goes silent (no heartbeat within the timeout) is given up
// and reconnected, and resumes where it was: the message sent into the
// silence arrives once.
func TestSilentStreamIsReconnected(t *testing.T) {
	srv := chattest.Start(t, chattest.WithBroker(broker.Config{Heartbeat: 50 * time.Millisecond}))
	px := startProxy(t, srv.URL)
	alice, bob := lobby(t, srv.URL)
	viaProxy := client.New(px.URL, client.WithToken(alice.Token()))
	t.Cleanup(viaProxy.CloseIdleConnections)
	reasons := make(chan error, 100)
	s := subscribe(t, viaProxy, client.HeartbeatTimeout(time.Second),
		client.OnReconnect(func(err error, _ time.Duration) { reasons <- err }))
	live(s, "alice")
	before := say(t, bob, "before", 1)
	got := messagesUntil(s, before[0])

	px.freeze()
	during := say(t, bob, "into the silence", 1)
	select {
	case err := <-reasons:
		if !errors.Is(err, client.ErrSilent) {
			t.Fatalf("reconnected because of %v, want ErrSilent", err)
		}
	case <-time.After(chattest.Timeout):
		t.Fatalf("no reconnection within %v of the stream going silent", chattest.Timeout)
	}
	got = append(got, messagesUntil(s, during[0])...)
	after := say(t, bob, "after", 1)
	got = append(got, messagesUntil(s, after[0])...)
	sameEvents(t, "messages across the silence", got, []client.Event{before[0], during[0], after[0]})
	if n := px.accepted.Load(); n < 2 {
		t.Fatalf("%d connections through the proxy, want a second one", n)
	}
}

// fakeStream serves scripted streams: the i-th connection gets frames[i]
// (then the stream ends, or stays open if it is the last script), and
// records the Last-Event-ID each connection sent.
type fakeStream struct {
	frames []string
	mu     sync.Mutex
	lastID []string
}

func (f *fakeStream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	i := len(f.lastID)
	f.lastID = append(f.lastID, r.Header.Get("Last-Event-ID"))
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("Cookie") != "" {
		http.Error(w, `{"error":"login required"}`, http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	if i >= len(f.frames) {
		i = len(f.frames) - 1
	}
	io.WriteString(w, f.frames[i])
	w.(http.Flusher).Flush()
	if i == len(f.frames)-1 {
		<-r.Context().Done()
	}
}

func (f *fakeStream) lastIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.lastID...)
}

func frame(id, kind, data string) string {
	return "id: " + id + "\nevent: " + kind + "\ndata: " + data + "\n\n"
}

func msg(id string) string {
	return frame(id, "message", `{"id":"`+id+`","room":"lobby","from":"bob","text":"m`+id+`","ts":"2026-11-25T18:52:02.825Z"}`)
}

// Logged events (reads too) replayed twice are handed over once; live
// state whose id repeats the position is not mistaken for a repeat; kinds
// this package does not know pass through; a shutdown's retry: is waited for, and the
// next connection resumes from the last event handled.
func TestStreamEvents(t *testing.T) {
	fake := &fakeStream{frames: []string{
		frame("1", "ready", `{"id":"1","user":"alice"}`) +
			frame("1", "presence", `{"id":"1","user":"alice","status":"online","ts":"2026-11-25T18:52:02.825Z"}`) +
			msg("2") + ": keepalive\n\n" + msg("3") +
			frame("4", "read", `{"id":"4","room":"lobby","read":"3","ts":"2026-11-25T18:52:02.825Z"}`) +
			"id: 4\nevent: shutdown\nretry: 300\ndata: {\"id\":\"4\",\"reason\":\"server restarting\"}\n\n",
		msg("2") + msg("3") +
			frame("4", "read", `{"id":"4","room":"lobby","read":"3","ts":"2026-11-25T18:52:02.825Z"}`) +
			frame("4", "ready", `{"id":"4","user":"alice"}`) +
			frame("4", "presence", `{"id":"4","user":"bob","status":"online","ts":"2026-11-25T18:52:02.825Z"}`) +
			msg("5") +
			frame("6", "read", `{"id":"6","room":"lobby","read":"5","ts":"2026-11-25T18:52:02.825Z"}`) +
			frame("6", "future", `[1,2]`) +
			frame("7", "join", `{"id":"7","room":"lobby","user":"carol","ts":"2026-11-25T18:52:02.825Z"}`) +
			": keepalive\n\n",
	}}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close) // after the subscription's end: cleanups run last first
	delays := make(chan time.Duration, 10)
	s := subscribe(t, client.New(srv.URL, client.WithToken("tok")),
		client.OnReconnect(func(err error, d time.Duration) { delays <- d }),
		client.ShutdownJitter(func(time.Duration) time.Duration { return 0 }))
	got := s.until(func(e client.Event) bool { return e.Kind == client.KindJoin })
	want := "ready#1 presence#1 message#2 message#3 read#4 shutdown#4 ready#4 presence#4 message#5 read#6 future#6 join#7 "
	if kinds(got) != want {
		t.Fatalf("handler got %s\nwant %s", kinds(got), want)
	}
	if e := got[3]; e.Text != "m3" || e.From != "bob" || e.Room != "lobby" || e.TS.IsZero() {
		t.Fatalf("message decoded as %+v", e)
	}
	if e := got[5]; e.Reason != "server restarting" {
		t.Fatalf("shutdown decoded as %+v", e)
	}
	if e := got[9]; e.Room != "lobby" || e.Read != "5" {
		t.Fatalf("read decoded as %+v", e)
	}
	if e := got[10]; e.Data != "[1,2]" {
		t.Fatalf("unknown kind's data %q, want it as sent", e.Data)
	}
	if d := <-delays; d < 300*time.Millisecond {
		t.Fatalf("reconnected after %v, before the shutdown's retry: 300", d)
	}
	if ids := fake.lastIDs(); len(ids) != 2 || ids[0] != "" || ids[1] != "4" {
		t.Fatalf("Last-Event-IDs sent %q, want none then 4", ids)
	}
}

// After a shutdown a client waits the server's retry: plus a random part
// of up to 5 s, so that the clients of a restarting server do not all
// come back at the same moment.
func TestShutdownSpreadsReconnects(t *testing.T) {
	shutdown := frame("1", "ready", `{"id":"1","user":"alice"}`) +
		"id: 1\nevent: shutdown\nretry: 300\ndata: {\"id\":\"1\",\"reason\":\"server restarting\"}\n\n"
	const retry = 300 * time.Millisecond
	// delay subscribes once and returns the wait announced after the
	// shutdown, ending Subscribe instead of waiting.
	delay := func(opts ...client.SubscribeOption) time.Duration {
		t.Helper()
		srv := httptest.NewServer(&fakeStream{frames: []string{shutdown, shutdown}})
		defer srv.Close()
		c := client.New(srv.URL, client.WithToken("tok"))
		defer c.CloseIdleConnections()
		ctx, cancel := context.WithCancel(testCtx(t))
		defer cancel()
		var d time.Duration
		opts = append(opts, client.OnReconnect(func(_ error, got time.Duration) { d = got; cancel() }))
		if err := c.Subscribe(ctx, func(client.Event) error { return nil }, opts...); !errors.Is(err, context.Canceled) {
			t.Fatalf("Subscribe returned %v, want context.Canceled", err)
		}
		return d
	}

	var spread time.Duration
	most := delay(client.ShutdownJitter(func(n time.Duration) time.Duration { spread = n; return n - 1 }))
	if spread != 5*time.Second || most != retry+spread-1 {
		t.Fatalf("with the random part at its most, waits %v (spread %v), want retry: 300 plus up to 5s", most, spread)
	}
	seen := map[time.Duration]bool{}
	var d time.Duration
	for range 20 {
		d = delay()
		if d < retry || d >= retry+5*time.Second {
			t.Fatalf("waits %v after a shutdown with retry: 300, want 300ms to 5.3s", d)
		}
		seen[d] = true
	}
	if len(seen) < 2 {
		t.Fatalf("20 clients all wait %v after a shutdown: they would come back together", d)
	}
}

// A handler's error ends Subscribe with that error, and the events after
// it are not handed over.
func TestHandlerError(t *testing.T) {
	srv := httptest.NewServer(&fakeStream{frames: []string{frame("1", "ready", `{"id":"1","user":"alice"}`) + msg("2") + msg("3")}})
	t.Cleanup(srv.Close)
	stop := errors.New("enough")
	var handled []string
	err := client.New(srv.URL, client.WithToken("tok")).Subscribe(testCtx(t), func(e client.Event) error {
		handled = append(handled, e.ID)
		if e.ID == "2" {
			return stop
		}
		return nil
	})
	if err != stop {
		t.Fatalf("Subscribe returned %v, want the handler's error", err)
	}
	if strings.Join(handled, " ") != "1 2" {
		t.Fatalf("handled %v, want 1 2", handled)
	}
}

// Whatever Subscribe is doing when its context ends (reading a live
// stream, running the handler, waiting to reconnect), it returns promptly
// and leaves no goroutine behind.
func TestCancelLeavesNothingBehind(t *testing.T) {
	srv := chattest.Start(t)
	alice, _ := lobby(t, srv.URL)
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downURL := "http://" + down.Addr().String()
	down.Close() // connections to it are refused: Subscribe keeps retrying
	// A burst: when the handler cancels on the first event, the library's
	// goroutines are already holding the next ones out to it.
	burst := frame("1", "ready", `{"id":"1","user":"alice"}`)
	for i := 2; i < 100; i++ {
		burst += msg(fmt.Sprint(i))
	}
	busy := httptest.NewServer(&fakeStream{frames: []string{burst}})
	t.Cleanup(busy.Close)

	cases := map[string]struct {
		c      *client.Client
		cancel func(e client.Event, cancel context.CancelFunc) // called by the handler
		wait   func(reconnects <-chan error, cancel context.CancelFunc)
	}{
		"live": {c: alice, cancel: func(e client.Event, cancel context.CancelFunc) {
			if e.Kind == client.KindPresence {
				go cancel()
			}
		}},
		"in the handler": {c: alice, cancel: func(e client.Event, cancel context.CancelFunc) {
			cancel()
		}},
		"in the handler, events pending": {c: client.New(busy.URL, client.WithToken("tok")), cancel: func(e client.Event, cancel context.CancelFunc) {
			cancel()
		}},
		"reconnecting": {c: client.New(downURL, client.WithToken(alice.Token())), wait: func(reconnects <-chan error, cancel context.CancelFunc) {
			<-reconnects
			<-reconnects
			cancel()
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			ignore := []goleak.Option{goleak.IgnoreCurrent(),
				goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
				goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop")}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			reconnects := make(chan error, 100)
			done := make(chan error, 1)
			go func() {
				done <- tc.c.Subscribe(ctx, func(e client.Event) error {
					if tc.cancel != nil {
						tc.cancel(e, cancel)
					}
					return nil
				}, client.OnReconnect(func(err error, _ time.Duration) { reconnects <- err }))
			}()
			if tc.wait != nil {
				tc.wait(reconnects, cancel)
			}
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("Subscribe returned %v, want context.Canceled", err)
				}
			case <-time.After(chattest.Timeout):
				t.Fatalf("Subscribe still running %v after its context ended", chattest.Timeout)
			}
			goleak.VerifyNone(t, ignore...)
		})
	}
}
