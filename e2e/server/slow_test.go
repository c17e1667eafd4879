//go:build unix

package server_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ssechat/ssechat/app"
	"github.com/ssechat/ssechat/broker"
	"github.com/ssechat/ssechat/internal/chattest"
)

// One client stops reading; the others keep receiving every message on
// time, the stalled connection is cut off and counted, and when its user
// comes back with Last-Event-ID it catches up exactly.
//
// Messages go out in concurrent bursts so that the stalled connection's
// queue overflows long before its write deadline: that is the path where
// the broker itself cuts a connection off (the deadline is the other).
func TestSlowConsumerIsCutOffAndCatchesUp(t *testing.T) {
	// A burst takes ~50 ms under -race on 2 cores and sam's queue (8 + the
	// library's 64) overflows within ~10 bursts: 2 s keeps the deadline
	// (the other way a stalled reader is cut off) out of the way on a slower
	// machine, and makes "on time" (below half of it) a loose bound.
	const writeTimeout = 2 * time.Second
	srv, log := startSmallBuffers(t, broker.Config{StreamBuffer: 8, WriteTimeout: writeTimeout})
	sam, alice, bob := srv.Login(t, "sam"), srv.Login(t, "alice"), srv.Login(t, "bob")
	var writers []*chattest.Client
	for i := range 8 {
		writers = append(writers, srv.Login(t, fmt.Sprintf("writer%d", i)))
	}
	for _, c := range append([]*chattest.Client{sam, alice, bob}, writers...) {
		c.Join("lobby")
	}
	fast := []*chattest.Stream{alice.Stream(""), bob.Stream("")}
	for _, s := range fast {
		s.Ready()
	}
	stalled := openStalled(t, srv.URL, sam.Token, "")
	waitPresence(fast[0], "sam", "online")

	// Big messages fill the small kernel buffers between the server and sam
	// quickly, then his connection's queue; then he is cut off and counted.
	filler := strings.Repeat("x", 3900)
	var acked []int64
	got := make([][]int64, len(fast))
	var worst time.Duration
	extra := 2 // bursts still to send once sam is cut off
	for i := 0; extra > 0; i++ {
		if i == 200 {
			t.Fatalf("sam was not cut off after %d bursts", i)
		}
		start := time.Now()
		ids, err := burst(srv.URL, writers, fmt.Sprintf("burst %d %s", i, filler))
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, ids...)
		top := strconv.FormatInt(ids[len(ids)-1], 10)
		for k, s := range fast {
			frames := s.Until(func(f chattest.Frame) bool { return f.ID == top })
			worst = max(worst, time.Since(start))
			for _, id := range messageIDs(frames) {
				got[k] = append(got[k], num(t, id))
			}
		}
		if srv.App.Broker().Kicked() > 0 {
			extra--
		}
	}
	t.Logf("sam cut off after %d messages; slowest burst of %d took %v to reach the others", len(acked), len(writers), worst)
	for k := range fast {
		if !slices.Equal(got[k], acked) {
			t.Fatalf("reader %d got %d messages, %d were sent", k, len(got[k]), len(acked))
		}
	}
	// Had sam's stall held up the fan-out, a burst would have waited for
	// his write deadline.
	within(t, "a burst's delivery to the reading clients", worst, writeTimeout/2)
	if k := srv.App.Broker().Kicked(); k != 1 {
		t.Fatalf("%d connections counted as cut off, want exactly sam's", k)
	}
	if !strings.Contains(log.String(), `reason="fell behind"`) {
		t.Fatalf("sam was not cut off for a full queue:\n%s", log)
	}

	// What reached sam before the cut, then what a resume adds.
	received := stalled.drain(t)
	if len(received) == 0 || received[0].Kind != "ready" {
		t.Fatalf("sam's stream before the cut: %s, want ready first", chattest.Kinds(received))
	}
	checkIncreasing(t, 0, received)
	last := received[len(received)-1].ID
	final := strconv.FormatInt(acked[len(acked)-1], 10)
	frames := sam.Stream(last).Until(func(f chattest.Frame) bool { return f.ID == final && isLogged(f.Kind) })
	if frames[0].Kind == "reset" {
		t.Fatalf("sam's resume from %s reset: %s", last, frames[0].Data)
	}
	checkIncreasing(t, num(t, last), frames)
	var all []int64
	for _, id := range append(messageIDs(received), messageIDs(frames)...) {
		all = append(all, num(t, id))
	}
	t.Logf("sam read %d messages before the cut, %d on resuming", len(messageIDs(received)), len(messageIDs(frames)))
	if !slices.Equal(all, acked) {
		t.Fatalf("sam read %d messages before the cut and %d after resuming from %s; %d were sent",
			len(messageIDs(received)), len(messageIDs(frames)), last, len(acked))
	}
}

// A client that resumes with a long backlog and then stops reading stalls
// only its own replay: live events for it are held, and once too many are
// held it is cut off, counted, while the others get every message on time.
func TestSlowConsumerDuringReplayIsCutOff(t *testing.T) {
	const writeTimeout = 2 * time.Second // see TestSlowConsumerIsCutOffAndCatchesUp
	srv, log := startSmallBuffers(t, broker.Config{StreamBuffer: 8, WriteTimeout: writeTimeout})
	sam, alice := srv.Login(t, "sam"), srv.Login(t, "alice")
	var writers []*chattest.Client
	for i := range 8 {
		writers = append(writers, srv.Login(t, fmt.Sprintf("writer%d", i)))
	}
	for _, c := range append([]*chattest.Client{sam, alice}, writers...) {
		c.Join("lobby")
	}
	aliceS := alice.Stream("")
	untilLive(aliceS, "alice")
	samS := sam.Stream("")
	samS.Ready()
	last := waitPresence(samS, "sam", "online").ID
	samS.Close()
	waitPresence(aliceS, "sam", "offline")

	// A backlog far larger than every buffer between sam and the server.
	filler := strings.Repeat("x", 3900)
	var acked []int64
	for i := range 20 {
		ids, err := burst(srv.URL, writers, fmt.Sprintf("backlog %d %s", i, filler))
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, ids...)
	}
	backlog := len(acked)
	stalled := openStalled(t, srv.URL, sam.Token, last)
	waitPresence(aliceS, "sam", "online")

	var got []int64
	var worst time.Duration
	extra := 2
	for i := 0; extra > 0; i++ {
		if i == 100 {
			t.Fatalf("sam's stalled replay was not cut off after %d bursts", i)
		}
		start := time.Now()
		ids, err := burst(srv.URL, writers, fmt.Sprintf("live %d", i))
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, ids...)
		top := strconv.FormatInt(ids[len(ids)-1], 10)
		for _, f := range aliceS.Until(func(f chattest.Frame) bool { return f.ID == top }) {
			if f.Kind == "message" {
				got = append(got, num(t, f.ID))
			}
		}
		worst = max(worst, time.Since(start))
		if srv.App.Broker().Kicked() > 0 {
			extra--
		}
	}
	if !slices.Equal(got, acked[backlog:]) {
		t.Fatalf("alice got %d live messages, %d were sent", len(got), len(acked)-backlog)
	}
	within(t, "a burst's delivery to a reading client", worst, writeTimeout/2)
	if k := srv.App.Broker().Kicked(); k != 1 {
		t.Fatalf("%d connections counted as cut off, want exactly sam's", k)
	}
	if !strings.Contains(log.String(), `reason="fell behind during replay"`) {
		t.Fatalf("sam was not cut off for the events held during his replay:\n%s", log)
	}

	received := stalled.drain(t)
	from := last
	if len(received) > 0 {
		from = received[len(received)-1].ID
	}
	final := strconv.FormatInt(acked[len(acked)-1], 10)
	frames := sam.Stream(from).Until(func(f chattest.Frame) bool { return f.ID == final && isLogged(f.Kind) })
	checkIncreasing(t, num(t, from), frames)
	var all []int64
	for _, id := range append(messageIDs(received), messageIDs(frames)...) {
		all = append(all, num(t, id))
	}
	if !slices.Equal(all, acked) {
		t.Fatalf("sam read %d messages before the cut and %d after resuming from %s; %d were sent",
			len(messageIDs(received)), len(messageIDs(frames)), from, len(acked))
	}
}

// burst posts text to the lobby once per writer, all at once, and returns
// the acknowledged ids in order.
func burst(base string, writers []*chattest.Client, text string) ([]int64, error) {
	ids := make([]int64, len(writers))
	errs := make([]error, len(writers))
	var wg sync.WaitGroup
	for i, w := range writers {
		wg.Go(func() {
			e, err := post(context.Background(), base, w.Token, "/api/rooms/lobby/messages", text)
			if err == nil {
				ids[i], err = strconv.ParseInt(e.ID, 10, 64)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	slices.Sort(ids)
	return ids, errors.Join(errs...)
}

// stalledStream is a stream whose client sent its request and then stopped
// reading: a raw connection with a tiny receive buffer.
type stalledStream struct {
	conn net.Conn
	req  *http.Request
}

func openStalled(t *testing.T, base, token, lastEventID string) *stalledStream {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	d := net.Dialer{Timeout: chattest.Timeout, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			// Set before connecting, so the advertised window stays small.
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	req, err := http.NewRequest("GET", base+"/api/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	return &stalledStream{conn: conn, req: req}
}

// drain reads everything the server wrote before it closed the connection
// and returns the complete frames; a frame cut off mid-way is dropped, as
// EventSource drops it.
func (s *stalledStream) drain(t *testing.T) []chattest.Frame {
	t.Helper()
	s.conn.SetReadDeadline(time.Now().Add(chattest.Timeout))
	resp, err := http.ReadResponse(bufio.NewReader(s.conn), s.req)
	if err != nil {
		t.Fatalf("read the stalled stream's response: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stalled stream: status %d", resp.StatusCode)
	}
	// The body ends with an error (the server cut the connection) or, if
	// the server finished the response cleanly, with EOF.
	body, err := io.ReadAll(resp.Body)
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server never closed the stalled stream: %v", err)
	}
	return parseFrames(string(body))
}

// read starts reading the stream: the client reads again, as a reader
// whose tab was in the background for a moment. The test's end closes it.
func (s *stalledStream) read(t *testing.T) *chattest.Stream {
	t.Helper()
	s.conn.SetReadDeadline(time.Now().Add(chattest.Timeout))
	resp, err := http.ReadResponse(bufio.NewReader(s.conn), s.req)
	if err != nil {
		t.Fatalf("read the stream's response head: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("stream: status %d", resp.StatusCode)
	}
	return chattest.ReadStream(t, resp, func() { s.conn.Close() })
}

// parseFrames parses the complete SSE events of body.
func parseFrames(body string) []chattest.Frame {
	var out []chattest.Frame
	chattest.ReadFrames(strings.NewReader(body), func(f chattest.Frame) { out = append(out, f) })
	return out
}

// A reader that stalls while its queue still has room is cut off by the
// write deadline instead; that too is a slow consumer, and it is counted.
func TestStalledReaderIsCutOffByWriteDeadline(t *testing.T) {
	const writeTimeout = time.Second
	// A queue far longer than the deadline lets messages arrive.
	srv, log := startSmallBuffers(t, broker.Config{StreamBuffer: 4096, WriteTimeout: writeTimeout})
	sam, alice, pat := srv.Login(t, "sam"), srv.Login(t, "alice"), srv.Login(t, "pat")
	for _, c := range []*chattest.Client{sam, alice, pat} {
		c.Join("lobby")
	}
	aliceS := alice.Stream("")
	untilLive(aliceS, "alice")
	stalled := openStalled(t, srv.URL, sam.Token, "")
	waitPresence(aliceS, "sam", "online")

	filler := strings.Repeat("x", 3900)
	start := time.Now()
	for i := 0; ; i++ {
		if time.Since(start) > 20*writeTimeout {
			t.Fatalf("sam still connected after %d messages in %v", i, time.Since(start))
		}
		e := pat.Say("lobby", fmt.Sprintf("%d %s", i, filler))
		frames := aliceS.Until(func(f chattest.Frame) bool { return f.ID == e.ID })
		if slices.ContainsFunc(frames, func(f chattest.Frame) bool {
			return f.Kind == "presence" && f.Event.User == "sam" && f.Event.Status == "offline"
		}) {
			t.Logf("sam cut off after %d messages, %v", i+1, time.Since(start))
			break
		}
	}
	stalled.drain(t)
	if k := srv.App.Broker().Kicked(); k != 1 {
		t.Fatalf("sam's connection was closed by its write deadline but %d connections were counted as cut off", k)
	}
	if !strings.Contains(log.String(), `reason="stopped reading"`) {
		t.Fatalf("sam was not cut off by the write deadline:\n%s", log)
	}
}

// startSmallBuffers is chattest.Start with small kernel send buffers on
// the server's connections: otherwise Linux lets a few megabytes pile up
// for a reader that stopped, and a test must push them all through before
// the server notices. It also returns the server's log, which a failing
// test prints.
func startSmallBuffers(t *testing.T, cfg broker.Config) (*chattest.Server, *syncBuffer) {
	t.Helper()
	db := filepath.Join(t.TempDir(), "chat.db")
	log := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", log)
		}
	})
	a, err := app.New(context.Background(), app.Config{
		DB:           db,
		PasswordCost: 4,
		Broker:       cfg,
		Static:       os.DirFS(filepath.Join(repoRoot(), "static")),
		Log:          slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(a.Handler())
	hs.Listener = smallBufferListener{hs.Listener}
	hs.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), chattest.Timeout)
		defer cancel()
		_ = a.Broker().Shutdown(ctx)
		hs.CloseClientConnections()
		hs.Close()
		_ = a.Close()
	})
	return &chattest.Server{URL: hs.URL, App: a, DB: db}, log
}

type smallBufferListener struct{ net.Listener }

func (l smallBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		// Setting it turns Linux's send buffer autotuning off, so a
		// stalled client's backlog overflows it. Not much smaller: a
		// reading client's burst (a stream writes what arrived during
		// its write gap at once, here 30 KB) then waits ~15 ms for
		// the kernel to take it, and is judged slow.
		_ = tc.SetWriteBuffer(64 << 10)
	}
	return c, err
}

// syncBuffer is a log destination that tests print when they fail.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A resume whose backlog is longer than the connection's queue is not cut
// off because of the live events that arrive during its replay: logged
// ones are held, and must follow the backlog once the reader has taken
// it, not fail a non-blocking publish into a queue the replay has just
// filled; presence (his own coming online) is dropped meanwhile, and the
// snapshot sent on going live says it instead, after the backlog and the
// held events.
func TestLongResumeIsNotCutOffByHeldEvents(t *testing.T) {
	srv, _ := startSmallBuffers(t, broker.Config{StreamBuffer: 8, WriteTimeout: 2 * time.Second})
	sam, alice := srv.Login(t, "sam"), srv.Login(t, "alice")
	var writers []*chattest.Client
	for i := range 8 {
		writers = append(writers, srv.Login(t, fmt.Sprintf("writer%d", i)))
	}
	for _, c := range append([]*chattest.Client{sam, alice}, writers...) {
		c.Join("lobby")
	}
	aliceS := alice.Stream("")
	untilLive(aliceS, "alice")
	filler := strings.Repeat("x", 3900)
	var acked []int64
	for i := range 20 {
		ids, err := burst(srv.URL, writers, fmt.Sprintf("backlog %d %s", i, filler))
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, ids...)
	}
	for attempt := range 3 {
		backlog := len(acked)
		// A burst while the replay is on its way: sam reads nothing until
		// it is acknowledged, and the 600 KB backlog cannot all be in the
		// kernel's buffers, so his replay is still going and the burst is
		// held. Once alice saw him come online, his stream is registered:
		// the burst is not in its backlog.
		paused := openStalled(t, srv.URL, sam.Token, "0")
		waitPresence(aliceS, "sam", "online")
		ids, err := burst(srv.URL, writers, fmt.Sprintf("during replay %d", attempt))
		if err != nil {
			t.Fatal(err)
		}
		acked = append(acked, ids...)
		s := paused.read(t)
		final := strconv.FormatInt(acked[len(acked)-1], 10)
		frames := s.Until(func(f chattest.Frame) bool { return f.ID == final && isLogged(f.Kind) })
		checkIncreasing(t, 0, frames) // no presence before ready, nothing repeated
		var got []int64
		for _, id := range messageIDs(frames) {
			got = append(got, num(t, id))
		}
		if !slices.Equal(got, acked) {
			t.Fatalf("attempt %d: %d messages read, want %d", attempt, len(got), len(acked))
		}
		// The burst is not in the backlog: it follows ready, before the
		// snapshot (held events go out before the stream goes live).
		readyAt := slices.IndexFunc(frames, isReady)
		if readyAt < 0 {
			t.Fatalf("attempt %d: no ready: %s", attempt, chattest.Kinds(frames))
		}
		if n := len(messageIDs(frames[:readyAt])); n != backlog {
			t.Fatalf("attempt %d: %d messages before ready, want the backlog of %d", attempt, n, backlog)
		}
		if live := slices.IndexFunc(frames, isLive); live >= 0 {
			t.Fatalf("attempt %d: presence before the events held during the replay: %s", attempt, chattest.Kinds(frames[readyAt:]))
		}
		if k := srv.App.Broker().Kicked(); k != 0 {
			t.Fatalf("attempt %d: a reading client resuming %d events was cut off", attempt, backlog)
		}
		// The snapshot, after the backlog and the held events: alice, and
		// sam himself, whose coming online was told (and dropped on this
		// stream, which was holding) before it went live.
		rest := readSnapshot(s, frames[readyAt+1:], func() string {
			e := writers[0].Say("lobby", fmt.Sprintf("after the snapshot %d", attempt))
			acked = append(acked, num(t, e.ID))
			return e.ID
		})
		checkSnapshot(t, frames[readyAt].ID, rest, "sam", "alice", "sam")
		s.Close()
		waitPresence(aliceS, "sam", "offline")
	}
}
