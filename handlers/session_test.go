package handlers_test

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssechat/ssechat/app"
	"github.com/ssechat/ssechat/internal/chattest"
)

// sessionClock is the server's session clock, moved by the test.
type sessionClock struct{ offset atomic.Int64 }

func (c *sessionClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *sessionClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

func withSessions(ttl time.Duration, clock *sessionClock) chattest.Option {
	return func(cfg *app.Config) {
		cfg.SessionTTL = ttl
		cfg.Clock = clock.Now
	}
}

// sessionCookie returns the session cookie a response sets, or nil.
func sessionCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == "session" {
			return c
		}
	}
	return nil
}

// get sends GET path with the cookie (or the bearer token) and returns the
// response, its body read.
func get(t *testing.T, c *chattest.Client, path string, cookie *http.Cookie) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", path, nil)
	if cookie != nil {
		req.AddCookie(cookie)
	} else {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp := c.Raw(req)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// A session expires --session-ttl after its last recorded use (sliding
// expiry); a use is recorded at most once an hour, and each recorded use
// sets the cookie again, so the cookie's Max-Age matches the server.
func TestSessionExpirySlidesAndTheCookieFollows(t *testing.T) {
	const ttl = 48 * time.Hour
	clock := &sessionClock{}
	srv := chattest.Start(t, withSessions(ttl, clock))
	alice := srv.Login(t, "alice")
	bob := srv.Login(t, "bob")

	// Login sets the cookie for the TTL.
	req, _ := http.NewRequest("POST", srv.URL+"/api/login", strings.NewReader(`{"username":"alice","password":"pw-alice"}`))
	req.Header.Set("Content-Type", "application/json")
	resp := alice.Raw(req)
	resp.Body.Close()
	cookie := sessionCookie(resp)
	if cookie == nil || cookie.MaxAge != int(ttl.Seconds()) {
		t.Fatalf("login cookie %+v, want Max-Age %d", cookie, int(ttl.Seconds()))
	}
	me := srv.URL + "/api/me"

	clock.Advance(30 * time.Minute)
	if resp, body := get(t, alice, me, cookie); resp.StatusCode != 200 || sessionCookie(resp) != nil {
		t.Fatalf("half an hour on: %d %s, cookie %+v; want 200 and no new cookie (a use is recorded at most once an hour)",
			resp.StatusCode, body, sessionCookie(resp))
	}
	clock.Advance(90 * time.Minute) // two hours after the login
	resp, body := get(t, alice, me, cookie)
	renewed := sessionCookie(resp)
	if resp.StatusCode != 200 || renewed == nil || renewed.Value != cookie.Value || renewed.MaxAge != int(ttl.Seconds()) {
		t.Fatalf("two hours on: %d %s, cookie %+v; want 200 and the cookie set again for the TTL", resp.StatusCode, body, renewed)
	}
	if resp, _ := get(t, alice, me, cookie); sessionCookie(resp) != nil {
		t.Fatal("the next request set the cookie again")
	}

	// The TTL after the login, but less after the recorded use: alive.
	clock.Advance(ttl - time.Hour)
	if resp, body := get(t, alice, me, cookie); resp.StatusCode != 200 {
		t.Fatalf("a TTL after the login, TTL−1h after the last recorded use: %d %s", resp.StatusCode, body)
	}
	// bob's bearer token, unused since his login: expired, with a clear error.
	resp, body = get(t, bob, me, nil)
	// (The pruner, had it run meanwhile, would have deleted it: "invalid
	// or expired session".)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "expired") {
		t.Fatalf("bob's token unused for longer than the TTL: %d %s; want 401, expired", resp.StatusCode, body)
	}
	// So is alice's cookie session, a TTL after its last recorded use
	// (the request above recorded one).
	clock.Advance(ttl + time.Minute)
	if resp, body := get(t, alice, me, cookie); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("cookie unused for longer than the TTL: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, alice, srv.URL+"/api/stream", nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("stream with an expired token: %d", resp.StatusCode)
	}
	// Logging in again works.
	again := srv.Login(t, "alice")
	again.MustDo("GET", "/api/me", nil, nil, 200)
}

// Logout ends the session's open streams at once, and only that
// session's; logout with ?all=1 ends every session of the user, with all
// their streams, and nobody else's.
func TestLogoutEndsTheSessionsStreams(t *testing.T) {
	srv := chattest.Start(t)
	phone, laptop, tablet := srv.Login(t, "alice"), srv.Login(t, "alice"), srv.Login(t, "alice")
	bob := srv.Login(t, "bob")
	for _, c := range []*chattest.Client{phone, bob} {
		c.Join("lobby")
	}
	phoneTab1, phoneTab2 := phone.Stream(""), phone.Stream("")
	laptopS, tabletS, bobS := laptop.Stream(""), tablet.Stream(""), bob.Stream("")
	for _, s := range []*chattest.Stream{phoneTab1, phoneTab2, laptopS, tabletS, bobS} {
		s.Ready()
	}

	phone.MustDo("POST", "/api/logout", nil, nil, http.StatusNoContent)
	for name, s := range map[string]*chattest.Stream{"phone tab 1": phoneTab1, "phone tab 2": phoneTab2} {
		frames := s.Ended()
		for _, f := range frames {
			if f.Kind == "message" || f.Kind == "private" {
				t.Fatalf("%s got %s after its session ended", name, f.Kind)
			}
		}
	}
	phone.MustDo("GET", "/api/me", nil, nil, http.StatusUnauthorized)
	// The other sessions of alice go on: a message reaches their streams.
	sent := bob.Say("lobby", "still there?")
	for _, s := range []*chattest.Stream{laptopS, tabletS} {
		if f := s.Expect("message", nil); f.ID != sent.ID {
			t.Fatalf("got %+v, want %s", f.Event, sent.ID)
		}
	}
	laptop.MustDo("GET", "/api/me", nil, nil, 200)

	// Everywhere: every session of alice ends, with every stream.
	laptop.MustDo("POST", "/api/logout?all=1", nil, nil, http.StatusNoContent)
	laptopS.Ended()
	tabletS.Ended()
	for _, c := range []*chattest.Client{phone, laptop, tablet} {
		c.MustDo("GET", "/api/me", nil, nil, http.StatusUnauthorized)
	}
	// Bob is untouched.
	bob.MustDo("GET", "/api/me", nil, nil, 200)
	bob.MustDo("POST", "/api/users/alice/messages", map[string]string{"text": "you there?"}, nil, 201)
	if f := bobS.Expect("private", nil); f.Event.Text != "you there?" {
		t.Fatalf("bob's stream got %+v", f.Event)
	}

	// all takes 1 or 0 (and true or false), nothing else.
	fresh := srv.Login(t, "alice")
	var e struct{ Error string }
	fresh.MustDo("POST", "/api/logout?all=yes", nil, &e, http.StatusBadRequest)
	if e.Error == "" {
		t.Fatal("?all=yes: no JSON error")
	}
	fresh.MustDo("POST", "/api/logout?all=0", nil, nil, http.StatusNoContent)
	fresh.MustDo("GET", "/api/me", nil, nil, http.StatusUnauthorized)
}

// A cookie-authenticated stream (the browser's EventSource) ends when the
// page logs out with the same cookie.
func TestLogoutEndsACookieStream(t *testing.T) {
	srv := chattest.Start(t)
	alice := srv.Login(t, "alice")
	cookie := &http.Cookie{Name: "session", Value: alice.Token}
	req, _ := http.NewRequest("GET", srv.URL+"/api/stream", nil)
	req.AddCookie(cookie)
	s := chattest.OpenStream(t, req)
	s.Ready()
	req, _ = http.NewRequest("POST", srv.URL+"/api/logout", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.AddCookie(cookie)
	resp := alice.Raw(req)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if c := sessionCookie(resp); c == nil || c.MaxAge >= 0 || c.Value != "" {
		t.Fatalf("logout cookie %+v, want it cleared", c)
	}
	s.Ended()
	var e struct{ Error string }
	if status := alice.Do("GET", "/api/me", nil, &e); status != http.StatusUnauthorized || e.Error == "" {
		t.Fatalf("after logout: %d %+v", status, e)
	}
}
