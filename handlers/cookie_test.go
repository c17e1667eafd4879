package handlers_test

import (
	"github.com/ssechat/ssechat/internal/chattest"
	"net/http"
	"strings"
	"testing"
)

// Browsers authenticate with the HttpOnly cookie, which rides along on
// cross-site requests too: writes must prove they come from our page.
func TestCookieAuthAndCrossSiteWrites(t *testing.T) {
	srv := chattest.Start(t)
	anon := srv.Anonymous(t)
	req, _ := http.NewRequest("POST", srv.URL+"/api/login", strings.NewReader(`{"username":"alice","password":"pw"}`))
	if resp := anon.Raw(req); resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("login as a form would send it: status %d, want 415", resp.StatusCode)
	}
	req, _ = http.NewRequest("POST", srv.URL+"/api/login", strings.NewReader(`{"username":"alice","password":"pw"}`))
	req.Header.Set("Content-Type", "application/json")
	resp := anon.Raw(req)
	resp.Body.Close()
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "session" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/", cookie)
	}

	send := func(method, path, contentType, origin, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.AddCookie(cookie)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp := anon.Raw(req)
		resp.Body.Close()
		return resp.StatusCode
	}
	sameOrigin := srv.URL
	cases := []struct {
		name, method, path, contentType, origin string
		want                                    int
	}{
		{"read needs nothing more", "GET", "/api/rooms", "", "", 200},
		{"write without content type", "POST", "/api/rooms/lobby/join", "", "", 415},
		{"write as a form would", "POST", "/api/rooms/lobby/join", "application/x-www-form-urlencoded", "", 415},
		{"write as text/plain", "POST", "/api/rooms/lobby/join", "text/plain", sameOrigin, 415},
		{"write from another site", "POST", "/api/rooms/lobby/join", "application/json", "https://evil.example", 403},
		{"write from a null origin", "POST", "/api/rooms/lobby/join", "application/json", "null", 403},
		{"write from our page", "POST", "/api/rooms/lobby/join", "application/json", sameOrigin, 200},
		{"write from a script without Origin", "POST", "/api/rooms/lobby/messages", "application/json; charset=utf-8", "", 201},
	}
	for _, tc := range cases {
		body := `{"text":"hi"}`
		if got := send(tc.method, tc.path, tc.contentType, tc.origin, body); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	// Bearer-authenticated requests need neither the content type nor
	// Origin: no browser attaches a bearer token by itself.
	alice := srv.Anonymous(t)
	alice.Token = cookie.Value
	req, _ = http.NewRequest("POST", srv.URL+"/api/rooms/lobby/leave", nil)
	req.Header.Set("Authorization", "Bearer "+cookie.Value)
	req.Header.Set("Origin", "https://evil.example")
	if resp := alice.Raw(req); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("bearer leave: status %d", resp.StatusCode)
	}

	// The browser's EventSource can only send the cookie.
	req, _ = http.NewRequest("GET", srv.URL+"/api/stream", nil)
	req.AddCookie(cookie)
	if f := chattest.OpenStream(t, req).Expect("ready", nil); f.Event.User != "alice" {
		t.Fatalf("cookie stream belongs to %q", f.Event.User)
	}
	// A cross-site login would sign the victim into the attacker's account.
	req, _ = http.NewRequest("POST", srv.URL+"/api/login", strings.NewReader(`{"username":"mallory","password":"pw"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "https://evil.example")
	if resp := anon.Raw(req); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site login: status %d, want 403", resp.StatusCode)
	}
	if got := send("POST", "/api/logout", "application/json", sameOrigin, ""); got != http.StatusNoContent {
		t.Fatalf("logout: %d", got)
	}
	if got := send("GET", "/api/rooms", "", "", ""); got != http.StatusUnauthorized {
		t.Fatalf("after logout the cookie still works: %d", got)
	}
}

func TestStaticClientIsServedWithAStrictPolicy(t *testing.T) {
	srv := chattest.Start(t)
	resp := srv.Anonymous(t).Raw(mustRequest(t, "GET", srv.URL+"/"))
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("CSP %q", csp)
	}
}

func mustRequest(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
