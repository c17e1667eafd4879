package edge_test

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/ssechat/ssechat/app"
)

// Every answer, whoever writes it, says X-Content-Type-Options: nosniff:
// a browser must never run a JSON answer or an error as HTML or script.
// The page keeps its own headers.
func TestEveryAnswerIsNosniff(t *testing.T) {
	srv := start(t)
	hc := client(t, "")
	alice, _ := login(t, hc, srv.URL, "alice")
	mustDo(t, hc, http.StatusOK, "POST", srv.URL+"/api/rooms/lobby/join", alice, "")
	for _, tc := range []struct {
		method, path, token, body string
		want                      int
		jsonError                 bool
	}{
		{"GET", "/api/rooms", alice, "", 200, false},
		{"GET", "/api/rooms/lobby/messages", alice, "", 200, false},
		{"POST", "/api/rooms/lobby/messages", alice, `{"text":"hi"}`, 201, false},
		{"POST", "/api/rooms/lobby/leave", alice, "", 204, false},
		{"GET", "/api/me", "", "", 401, true},
		{"POST", "/api/rooms/lobby/messages", alice, `{"text":`, 400, true},
		{"GET", "/api/rooms/lobby/messages", alice, "", 403, true},
		{"GET", "/api/nothing", "", "", 404, true},
		{"DELETE", "/api/me", alice, "", 405, true},
		{"GET", "/", "", "", 200, false},
		{"GET", "/app.css", "", "", 200, false},
		{"GET", "/no-such-file.txt", "", "", 404, false},
	} {
		resp, body := do(t, hc, tc.method, srv.URL+tc.path, tc.token, tc.body)
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s: status %d, want %d: %s", tc.method, tc.path, resp.StatusCode, tc.want, body)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s %s: X-Content-Type-Options %q", tc.method, tc.path, got)
		}
		if tc.jsonError && !isJSONError(body) {
			t.Errorf("%s %s: %q, want a JSON error", tc.method, tc.path, body)
		}
	}

	// The page keeps what only it needs.
	resp, _ := mustDo(t, hc, http.StatusOK, "GET", srv.URL+"/", "", "")
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("page CSP %q", csp)
	}
	if rp := resp.Header.Get("Referrer-Policy"); rp != "no-referrer" {
		t.Errorf("page Referrer-Policy %q", rp)
	}

	// A stream's head is written by the broker on the connection it took
	// over; it carries the header too.
	mustDo(t, hc, http.StatusOK, "POST", srv.URL+"/api/rooms/lobby/join", alice, "")
	c := dial(t, srv.Addr, "")
	c.send(t, request("GET", "/api/stream", alice))
	head, _ := c.response(t, "GET")
	if head.StatusCode != 200 || head.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("stream: %d, X-Content-Type-Options %q", head.StatusCode, head.Header.Get("X-Content-Type-Options"))
	}
	c.Close()
}

// A path with a trailing slash it does not have is an unknown route: a
// JSON 404, as for any other, not a redirect (which would carry no JSON
// and, for a POST, lose the body with some clients).
func TestTrailingSlashIsJSON404(t *testing.T) {
	srv := start(t)
	hc := client(t, "")
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	alice, _ := login(t, hc, srv.URL, "alice")
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/api/rooms/", ""},
		{"GET", "/api/me/", ""},
		{"POST", "/api/login/", `{"username":"alice","password":"pw-alice"}`},
		{"POST", "/api/rooms/lobby/join/", ""},
	} {
		resp, body := do(t, hc, tc.method, srv.URL+tc.path, alice, tc.body)
		if resp.StatusCode != http.StatusNotFound || !isJSONError(body) || resp.Header.Get("Location") != "" {
			t.Errorf("%s %s: %d (Location %q) %s, want a JSON 404", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Location"), body)
		}
	}
}

// HEAD on a GET route answers as the GET would, without the body: the
// same status, headers and Content-Length, after the same checks.
func TestHEADOnGETRoutes(t *testing.T) {
	srv := start(t)
	hc := client(t, "")
	alice, _ := login(t, hc, srv.URL, "alice")
	mustDo(t, hc, http.StatusOK, "POST", srv.URL+"/api/rooms/lobby/join", alice, "")
	mustDo(t, hc, http.StatusCreated, "POST", srv.URL+"/api/rooms/lobby/messages", alice, `{"text":"hi"}`)
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/api/rooms", alice, 200},
		{"/api/me", alice, 200},
		{"/api/rooms/lobby/messages?limit=5", alice, 200},
		{"/api/rooms/lobby/members", alice, 200},
		{"/api/conversations", alice, 200},
		{"/api/rooms", "", 401},
		{"/api/rooms/nowhere/members", alice, 404},
		{"/", "", 200},
		{"/app.css", "", 200},
	} {
		get, getBody := do(t, hc, "GET", srv.URL+tc.path, tc.token, "")
		head, headBody := do(t, hc, "HEAD", srv.URL+tc.path, tc.token, "")
		if head.StatusCode != tc.want || get.StatusCode != tc.want {
			t.Errorf("HEAD %s: %d (GET %d), want %d", tc.path, head.StatusCode, get.StatusCode, tc.want)
			continue
		}
		if len(headBody) != 0 {
			t.Errorf("HEAD %s: a body of %d bytes", tc.path, len(headBody))
		}
		if got, want := head.Header.Get("Content-Type"), get.Header.Get("Content-Type"); got != want {
			t.Errorf("HEAD %s: Content-Type %q, GET's %q", tc.path, got, want)
		}
		if got := head.Header.Get("Content-Length"); got != strconv.Itoa(len(getBody)) {
			t.Errorf("HEAD %s: Content-Length %q, GET's body is %d bytes", tc.path, got, len(getBody))
		}
		if head.Header.Get("Allow") != "" || head.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("HEAD %s: Allow %q, X-Content-Type-Options %q", tc.path, head.Header.Get("Allow"), head.Header.Get("X-Content-Type-Options"))
		}
	}
	// On the wire: no body follows the HEAD's head, so the next answer on
	// the connection reads cleanly.
	c := dial(t, srv.Addr, "")
	c.send(t, request("HEAD", "/api/rooms", alice)+request("GET", "/api/me", alice))
	if head, _ := c.response(t, "HEAD"); head.StatusCode != http.StatusOK || head.ContentLength <= 0 {
		t.Errorf("HEAD /api/rooms on the wire: %d, Content-Length %d", head.StatusCode, head.ContentLength)
	}
	if get, body := c.response(t, "GET"); get.StatusCode != http.StatusOK || !strings.Contains(string(body), `"username":"alice"`) {
		t.Errorf("GET /api/me after a HEAD on one connection: %d %q", get.StatusCode, body)
	}

	// A stream has no HEAD: it would open the stream.
	if resp, _ := do(t, hc, "HEAD", srv.URL+"/api/stream", alice, ""); resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET" {
		t.Errorf("HEAD /api/stream: %d, Allow %q; want 405, GET", resp.StatusCode, resp.Header.Get("Allow"))
	}
	// Nor has a POST route.
	if resp, _ := do(t, hc, "HEAD", srv.URL+"/api/login", "", ""); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("HEAD /api/login: %d, want 405", resp.StatusCode)
	}
}

// The session cookie is Secure when the browser's request came over
// HTTPS: here (see TestHTTPS) or to a trusted proxy that says so. A
// client's own X-Forwarded-Proto counts for nothing.
func TestSecureCookieBehindTrustedProxy(t *testing.T) {
	srv := start(t, func(c *app.Config) {
		c.HTTP.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
	})
	direct, proxy := client(t, "127.0.0.1"), client(t, "127.0.0.2")
	for _, tc := range []struct {
		name   string
		hc     *http.Client
		proto  string
		secure bool
	}{
		{"direct, plain", direct, "", false},
		{"direct, claiming https", direct, "https", false},
		{"trusted proxy, https", proxy, "https", true},
		{"trusted proxy, http", proxy, "http", false},
		{"trusted proxy, no header", proxy, "", false},
	} {
		var header []string
		if tc.proto != "" {
			header = []string{"X-Forwarded-Proto", tc.proto}
		}
		_, resp := login(t, tc.hc, srv.URL, "alice", header...)
		cookie := sessionCookie(resp)
		if cookie == nil || cookie.Secure != tc.secure {
			t.Errorf("%s: session cookie %+v, want Secure %v", tc.name, cookie, tc.secure)
		}
	}
}

func sessionCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == "session" {
			return c
		}
	}
	return nil
}

// OPTIONS * is not net/http's silent 200: it goes to the router like any
// other unknown route.
func TestOptionsStarIsJSON404(t *testing.T) {
	srv := start(t)
	c := dial(t, srv.Addr, "")
	c.send(t, request("OPTIONS", "*", ""))
	resp, body := c.response(t, "OPTIONS")
	if resp.StatusCode != http.StatusNotFound || !isJSONError(body) || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("OPTIONS *: %d %q %v, want a JSON 404 with nosniff", resp.StatusCode, body, resp.Header)
	}
}

// The answers net/http writes before any handler runs are JSON too, with
// nosniff, on the real server: a request line it cannot parse, and headers
// over its 1 MiB limit.
func TestNetHTTPRefusalsAreJSON(t *testing.T) {
	srv := start(t)
	for _, tc := range []struct {
		name, request string
		want          int
	}{
		{"garbage request line", "HELLO THERE\r\n\r\n", http.StatusBadRequest},
		{"headers over 1 MiB", "GET /api/me HTTP/1.1\r\nHost: edge.test\r\nX-Big: " + strings.Repeat("a", 1<<20+8<<10) + "\r\n\r\n", http.StatusRequestHeaderFieldsTooLarge},
	} {
		c := dial(t, srv.Addr, "")
		c.send(t, tc.request)
		resp, body := c.response(t, "GET")
		if resp.StatusCode != tc.want || !isJSONError(body) {
			t.Errorf("%s: %d %q, want %d and a JSON error", tc.name, resp.StatusCode, body, tc.want)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", tc.name)
		}
	}
}
