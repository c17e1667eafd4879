//go:build unix

package cluster_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ssechat/ssechat/internal/chattest"
)

// echoUpstream stands in for an instance behind nginx and tells what
// reached it: which requests, over how many connections, with which
// headers.
type echoUpstream struct {
	name    string
	addr    string
	ticks   chan string // each value sent becomes one event on an open /api/stream
	flooded chan int    // how much /api/stream?flood wrote before it got stuck

	mu       sync.Mutex
	conns    int            // connections accepted
	requests map[string]int // "METHOD /path" → count
	last     seen
}

// seen is what an upstream saw of a request.
type seen struct {
	Upstream, Proto, Connection, Host, XFF, XFP string
	BodyLen                                     int
}

func startEchoUpstream(t *testing.T, name string, ticks chan string) *echoUpstream {
	u := &echoUpstream{name: name, ticks: ticks, flooded: make(chan int, 1), requests: map[string]int{}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(u.serve))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			u.mu.Lock()
			u.conns++
			u.mu.Unlock()
		}
	}
	srv.Start()
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	u.addr = srv.Listener.Addr().String()
	return u
}

func (u *echoUpstream) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s := seen{
		Upstream: u.name, Proto: r.Proto, Connection: r.Header.Get("Connection"), Host: r.Host,
		XFF: r.Header.Get("X-Forwarded-For"), XFP: r.Header.Get("X-Forwarded-Proto"), BodyLen: len(body),
	}
	u.mu.Lock()
	u.requests[r.Method+" "+r.URL.Path]++
	u.last = s
	u.mu.Unlock()
	switch r.URL.Path {
	case "/api/crash":
		// The request arrived, then the instance died before answering.
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	case "/api/big":
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"text": strings.Repeat("hello lobby ", 2000)})
	case "/api/stream":
		// An SSE stream like the server's, but without X-Accel-Buffering:
		// only nginx.conf's proxy_buffering off keeps it unbuffered.
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		rc := http.NewResponseController(w)
		if r.URL.Query().Has("flood") {
			u.flood(w, rc)
			return
		}
		fmt.Fprint(w, "id: 0\nevent: ready\ndata: {}\n\n")
		rc.Flush()
		for {
			select {
			case text := <-u.ticks:
				fmt.Fprintf(w, "id: 1\nevent: message\ndata: {\"text\":%q}\n\n", text)
				rc.Flush()
			case <-r.Context().Done():
				return
			}
		}
	default:
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s)
	}
}

// floodSize is what the flooding stream tries to write: more than the
// socket buffers between it and a client that reads nothing can hold.
const floodSize = 64 << 20

// flood writes comments until floodSize or until a write is stuck for a
// second, and sends how much it wrote on u.flooded.
func (u *echoUpstream) flood(w http.ResponseWriter, rc *http.ResponseController) {
	chunk := []byte(":" + strings.Repeat("x", 64<<10-2) + "\n")
	n := 0
	for n < floodSize {
		rc.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := w.Write(chunk); err != nil {
			break
		}
		n += len(chunk)
	}
	u.flooded <- n
}

func (u *echoUpstream) count(request string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.requests[request]
}

func (u *echoUpstream) connections() int { u.mu.Lock(); defer u.mu.Unlock(); return u.conns }

// TestNginxConfig proves what deploy/nginx.conf promises with stand-in
// instances that report what reached them, so it needs neither the
// server's cluster mode nor PostgreSQL nor Redis.
func TestNginxConfig(t *testing.T) {
	needNginx(t)
	ticks := make(chan string)
	u1, u2 := startEchoUpstream(t, "u1", ticks), startEchoUpstream(t, "u2", ticks)
	lb := startNginx(t, u1.addr, u2.addr)
	host := strings.TrimPrefix(lb.URL, "http://")

	t.Run("round robin over keep-alive HTTP/1.1 with the forwarded headers", func(t *testing.T) {
		const n = 20
		by := map[string]int{}
		for i := range n {
			status, data, err := send(lb.URL, "", "GET", "/api/echo", nil)
			if err != nil || status != http.StatusOK {
				t.Fatalf("GET %d: %d %v", i, status, err)
			}
			var s seen
			if err := json.Unmarshal(data, &s); err != nil {
				t.Fatal(err)
			}
			by[s.Upstream]++
			want := seen{Upstream: s.Upstream, Proto: "HTTP/1.1", Host: host, XFF: "127.0.0.1", XFP: "http"}
			if s != want {
				t.Fatalf("the instance saw %+v, want %+v", s, want)
			}
		}
		if by["u1"] == 0 || by["u2"] == 0 {
			t.Fatalf("requests by instance: %v; round robin sends to both", by)
		}
		// Each worker keeps its idle connections: far fewer than requests.
		if c := u1.connections() + u2.connections(); c > n/2 {
			t.Fatalf("%d requests took %d connections to the instances: no keep-alive", n, c)
		}
	})

	t.Run("the stream is neither buffered nor compressed", func(t *testing.T) {
		req, _ := http.NewRequest("GET", lb.URL+"/api/stream", nil)
		// Set by hand, the transport leaves Content-Encoding to us.
		req.Header.Set("Accept-Encoding", "gzip")
		s := chattest.OpenStream(t, req)
		if ce := s.Resp.Header.Get("Content-Encoding"); ce != "" {
			t.Fatalf("the stream came with Content-Encoding %q", ce)
		}
		s.Ready()
		for i := range 3 {
			text := fmt.Sprintf("tick %d", i)
			start := time.Now()
			ticks <- text
			if f := s.Next(); f.Event.Text != text {
				t.Fatalf("got %s %q, want %q", f.Kind, f.Data, text)
			}
			// At once, though the stream is quiet.
			if d := time.Since(start); d > time.Second {
				t.Fatalf("event %d took %v through nginx", i, d)
			}
		}
		s.Close()

		// Other answers are compressed (history pages are large).
		req, _ = http.NewRequest("GET", lb.URL+"/api/big", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := httpc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if ce := resp.Header.Get("Content-Encoding"); ce != "gzip" {
			t.Fatalf("a 24 KB JSON answer came with Content-Encoding %q, want gzip", ce)
		}
	})

	t.Run("a stream nobody reads holds the instance back", func(t *testing.T) {
		// The server cuts off a client that stops reading (its queue fills
		// up, its write times out) so that it resumes later: that works
		// only if nginx does not read on for the client. Buffering, it
		// would take a gigabyte into a temporary file first.
		req, _ := http.NewRequest("GET", lb.URL+"/api/stream?flood", nil)
		resp, err := httpc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var n int
		select {
		case n = <-u1.flooded:
		case n = <-u2.flooded:
		case <-time.After(30 * time.Second):
			t.Fatal("the flooding stream neither finished nor got stuck")
		}
		if n >= floodSize*3/4 {
			t.Fatalf("the instance wrote %d MiB to a client that reads nothing: nginx buffers the stream", n>>20)
		}
		t.Logf("the instance got stuck after %d MiB: the socket buffers", n>>20)
	})

	t.Run("a request body larger than nginx's buffer reaches the instance", func(t *testing.T) {
		// It goes through a temporary file the workers write.
		body := map[string]string{"text": strings.Repeat("x", 100<<10)}
		status, data, err := send(lb.URL, "", "POST", "/api/echo", body)
		var s seen
		if err != nil || status != http.StatusOK || json.Unmarshal(data, &s) != nil || s.BodyLen < 100<<10 {
			t.Fatalf("POST of 100 KB: %d %v %s\n%s", status, err, data, lb.file("error.log"))
		}
	})

	// Each of the next requests gets an nginx of its own: one that failed
	// takes the instances out for fail_timeout (in that worker), and the
	// next request would find none to try.
	t.Run("a POST that reached an instance is never passed on", func(t *testing.T) {
		lb := startNginx(t, u1.addr, u2.addr)
		status, _, err := send(lb.URL, "", "POST", "/api/crash", map[string]string{"text": "once"})
		if err != nil || status != http.StatusBadGateway {
			t.Fatalf("POST to an instance that died with it: %d %v, want 502", status, err)
		}
		if got := u1.count("POST /api/crash") + u2.count("POST /api/crash"); got != 1 {
			t.Fatalf("the POST reached the instances %d times, want once", got)
		}
		// A GET is idempotent: nginx tries the other instance.
		lb = startNginx(t, u1.addr, u2.addr)
		status, _, err = send(lb.URL, "", "GET", "/api/crash", nil)
		if err != nil || status != http.StatusBadGateway {
			t.Fatalf("GET to instances that both die: %d %v, want 502", status, err)
		}
		if u1.count("GET /api/crash") == 0 || u2.count("GET /api/crash") == 0 {
			t.Fatalf("the GET reached u1 %d and u2 %d times: it should have been passed on",
				u1.count("GET /api/crash"), u2.count("GET /api/crash"))
		}
	})

	t.Run("a dead instance is skipped, POSTs included", func(t *testing.T) {
		dead := fmt.Sprintf("127.0.0.1:%d", freePort(t)) // nothing listens there
		lb := startNginx(t, dead, u1.addr)
		before := u1.count("POST /api/echo")
		// POSTs first: a fresh worker's round robin begins with the first
		// server, the dead one.
		for i := range 10 {
			method := "POST"
			if i >= 5 {
				method = "GET"
			}
			status, _, err := send(lb.URL, "", method, "/api/echo", map[string]int{"i": i})
			if err != nil || status != http.StatusOK {
				t.Fatalf("%s %d with one instance dead: %d %v", method, i, status, err)
			}
		}
		if got := u1.count("POST /api/echo") - before; got != 5 {
			t.Fatalf("the live instance got %d of 5 POSTs", got)
		}
		// The refused connection is in the log: the POST was passed on
		// because nothing of it had been sent.
		tried := lb.upstreamsOf("POST /api/echo")
		if len(tried) == 0 || tried[0] != dead+","+u1.addr {
			t.Fatalf("the first POST was not tried on the dead instance first: %q", tried)
		}
	})
}

// TestNginxInFrontOfAnInstance runs the real server (SQLite, alone)
// behind deploy/nginx.conf: the stream, its heartbeats, resume, the
// cookie's Origin check and a graceful shutdown all work through the
// proxy. No cluster semantics: it runs without PostgreSQL and Redis.
func TestNginxInFrontOfAnInstance(t *testing.T) {
	needNginx(t)
	in := startInstances(t, []string{"--db", filepath.Join(t.TempDir(), "chat.db"), "--password-cost", "4",
		"--heartbeat", "100ms", "--shutdown-timeout", "3s", "--limits", "off", "--metrics-addr", ""}, "A")[0]
	lb := startNginx(t, in.Addr)
	srv := lb.server()
	alice, bob := user(t, srv, "alice", "lobby"), user(t, srv, "bob", "lobby")

	req, _ := http.NewRequest("GET", lb.URL+"/api/stream", nil)
	req.Header.Set("Authorization", "Bearer "+alice.Token)
	req.Header.Set("Accept-Encoding", "gzip")
	s := chattest.OpenStream(t, req)
	if ct, ce := s.Resp.Header.Get("Content-Type"), s.Resp.Header.Get("Content-Encoding"); !strings.HasPrefix(ct, "text/event-stream") || ce != "" {
		t.Fatalf("stream through nginx: Content-Type %q, Content-Encoding %q", ct, ce)
	}
	s.Ready()
	start := time.Now()
	m := bob.Say("lobby", "through nginx")
	s.Expect("message", func(e chattest.Event) bool { return e.ID == m.ID })
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a message took %v to cross nginx", d)
	}

	// Heartbeats cross too: they are what keeps a quiet stream open.
	heartbeat(t, lb.URL, alice.Token)

	// Resume through nginx: exactly what was missed.
	s.Close()
	var missed []string
	for i := range 3 {
		missed = append(missed, bob.Say("lobby", fmt.Sprintf("missed %d", i)).ID)
	}
	s = alice.Stream(m.ID)
	backlog := resumed(t, s)
	if got := ids(logEvents(backlog)); strings.Join(got, ",") != strings.Join(missed, ",") {
		t.Fatalf("resumed through nginx from %s: %v, want %v", m.ID, got, missed)
	}

	// A browser's cookie write passes the Origin check: nginx passes Host
	// with its port.
	cookieWrite(t, lb.URL, "carol")

	// SIGTERM: the stream gets its shutdown event through nginx, and ends.
	in.signal(syscall.SIGTERM)
	frames := s.Ended()
	if len(frames) == 0 || frames[len(frames)-1].Kind != "shutdown" || frames[len(frames)-1].Retry == "" {
		t.Fatalf("stream through nginx ended with %s, want shutdown with retry", chattest.Kinds(frames))
	}
	if err := in.wait(chattest.Timeout); err != nil {
		t.Fatalf("instance exited with %v", err)
	}
}

// heartbeat reads token's stream from base raw and returns once a
// comment line (a heartbeat) came through.
func heartbeat(t testing.TB, base, token string) {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/api/stream", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := httpc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), ":") {
				got <- true
				return
			}
		}
		got <- false
	}()
	select {
	case ok := <-got:
		if !ok {
			t.Fatal("the stream ended before a heartbeat")
		}
	case <-time.After(chattest.Timeout):
		t.Fatal("no heartbeat through nginx")
	}
	resp.Body.Close()
}

// cookieWrite logs name in through base as a browser does (cookie, Origin
// header) and posts a cookie-authenticated message with that Origin.
func cookieWrite(t testing.TB, base, name string) {
	t.Helper()
	do := func(method, path, cookie string, body string) *http.Response {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", base)
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := httpc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resp := do("POST", "/api/login", "", fmt.Sprintf(`{"username":%q,"password":"pw"}`, name))
	if resp.StatusCode != http.StatusOK || len(resp.Cookies()) == 0 {
		t.Fatalf("login with Origin %s through nginx: %d", base, resp.StatusCode)
	}
	cookie := resp.Cookies()[0].Name + "=" + resp.Cookies()[0].Value
	if resp := do("POST", "/api/rooms/lobby/join", cookie, "{}"); resp.StatusCode != http.StatusOK {
		t.Fatalf("cookie join with Origin %s through nginx: %d", base, resp.StatusCode)
	}
}
