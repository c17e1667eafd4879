package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/ssechat/ssechat/app"
	"github.com/ssechat/ssechat/internal/chattest"
	"github.com/ssechat/ssechat/internal/pgtest"
	"github.com/ssechat/ssechat/limits"
)

// testClock is the limits' clock in these tests: it moves only when told,
// so that a test waits out a Retry-After without sleeping.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock by a Retry-After's worth of seconds.
func (c *testClock) Advance(retryAfter string) {
	var secs int
	if _, err := fmt.Sscan(retryAfter, &secs); err != nil {
		panic(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Duration(secs) * time.Second)
}

// startLimited boots a server with cfg's limits on a test clock, behind a
// trusted proxy on loopback: a test says which client address a request
// comes from with X-Forwarded-For (see send).
func startLimited(t *testing.T, cfg limits.Config) (*chattest.Server, *testClock) {
	t.Helper()
	clock := &testClock{now: time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)}
	srv := chattest.Start(t, func(c *app.Config) {
		c.HTTP.Limits = cfg
		c.HTTP.LimitBackend = limits.Memory{Now: clock.Now}
		c.HTTP.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	})
	return srv, clock
}

// answer is what the tests look at in a response.
type answer struct {
	status     int
	retryAfter string
	err        string // the JSON {"error"}
	token      string // a login's
}

// send sends body (nil: none) as JSON with token (if any), from the client
// address from (if any, through the trusted proxy), and reads the answer.
func send(t *testing.T, base, method, path, token, from string, body any) answer {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if from != "" {
		req.Header.Set("X-Forwarded-For", from)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out struct{ Error, Token string }
	if resp.StatusCode != http.StatusOK || strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(data, &out)
	}
	return answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), err: out.Error, token: out.Token}
}

func login(t *testing.T, srv *chattest.Server, name, password, from string) answer {
	t.Helper()
	return send(t, srv.URL, "POST", "/api/login", "", from, map[string]string{"username": name, "password": password})
}

func post(t *testing.T, srv *chattest.Server, c *chattest.Client, path, text string) answer {
	t.Helper()
	return send(t, srv.URL, "POST", path, c.Token, "", map[string]string{"text": text})
}

// want checks an answer's status.
func want(t *testing.T, what string, a answer, status int) {
	t.Helper()
	if a.status != status {
		t.Fatalf("%s: %d %q, want %d", what, a.status, a.err, status)
	}
}

// want429 checks a refusal: 429, Retry-After as said, and an error that
// names the limit and says when to retry.
func want429(t *testing.T, what string, a answer, retryAfter, limit string) {
	t.Helper()
	if a.status != http.StatusTooManyRequests {
		t.Fatalf("%s: %d %q, want 429", what, a.status, a.err)
	}
	if a.retryAfter != retryAfter {
		t.Errorf("%s: Retry-After %q, want %q", what, a.retryAfter, retryAfter)
	}
	if !strings.Contains(a.err, limit) || !strings.HasSuffix(a.err, "retry in "+retryAfter+" s") {
		t.Errorf("%s: error %q, want it to name %q and end with \"retry in %s s\"", what, a.err, limit, retryAfter)
	}
}

func TestMessageRate(t *testing.T) {
	srv, clock := startLimited(t, limits.Config{MessageRate: 1, MessageBurst: 3})
	alice, bob := srv.Login(t, "alice"), srv.Login(t, "bob")
	alice.Join("lobby")
	bob.Join("lobby")

	// Room, @name and private messages share one budget.
	alice.Say("lobby", "one")
	alice.Say("lobby", "@bob two")
	alice.MustDo("POST", "/api/users/bob/messages", map[string]string{"text": "three"}, nil, 201)
	want429(t, "a 4th room message", post(t, srv, alice, "/api/rooms/lobby/messages", "four"), "1", "too many messages")
	want429(t, "a 4th private message", post(t, srv, alice, "/api/users/bob/messages", "four"), "1", "too many messages")
	// Refused before anything is read: even a bad request is refused.
	want429(t, "an empty text", post(t, srv, alice, "/api/rooms/lobby/messages", ""), "1", "too many messages")

	// Bob has a budget of his own.
	for i := range 3 {
		bob.Say("lobby", fmt.Sprint("bob ", i))
	}

	clock.Advance("1")
	alice.Say("lobby", "five")
	want429(t, "right after the refill", post(t, srv, alice, "/api/rooms/lobby/messages", "six"), "1", "too many messages")

	// Nothing refused was published.
	var page struct{ Messages []chattest.Event }
	alice.MustDo("GET", "/api/rooms/lobby/messages", nil, &page, 200)
	var texts []string
	for _, m := range page.Messages {
		if m.From == "alice" {
			texts = append(texts, m.Text)
		}
	}
	if got := strings.Join(texts, ","); got != "one,five" {
		t.Errorf("alice's room history %q, want one,five", got)
	}
}

func TestStreamCap(t *testing.T) {
	srv, _ := startLimited(t, limits.Config{StreamsPerUser: 2})
	alice, bob := srv.Login(t, "alice"), srv.Login(t, "bob")
	first, second := alice.Stream(""), alice.Stream("")
	first.Ready()
	second.Ready()
	want429(t, "a 3rd stream", send(t, srv.URL, "GET", "/api/stream", alice.Token, "", nil), "5", "too many open streams")

	bob.Stream("").Ready() // bob has his own cap

	first.Close()
	chattest.Eventually(t, "alice's closed stream to unregister", func() bool { return srv.App.Broker().StreamsOf(t.Context(), "alice") == 1 })
	alice.Stream("").Ready()
	want429(t, "a 3rd stream again", send(t, srv.URL, "GET", "/api/stream", alice.Token, "", nil), "5", "too many open streams")
}

func TestFailedLoginsPerName(t *testing.T) {
	srv, clock := startLimited(t, limits.Config{FailedLoginsPerName: 3})
	srv.Login(t, "alice")
	srv.Login(t, "bob")
	// Logins with the right password never count, however many.
	for range 5 {
		want(t, "alice's right password", login(t, srv, "alice", "pw-alice", "203.0.113.1"), 200)
	}
	for range 3 {
		want(t, "alice's wrong password", login(t, srv, "alice", "guess", "203.0.113.1"), 401)
	}
	// 15 minutes / 3: one more try every 300 s. The right password, from
	// elsewhere, in another case: refused all the same.
	want429(t, "the right password", login(t, srv, "alice", "pw-alice", "203.0.113.1"), "300", "too many failed logins for this username")
	want429(t, "from another address", login(t, srv, "Alice", "pw-alice", "198.51.100.9"), "300", "too many failed logins for this username")
	want(t, "bob", login(t, srv, "bob", "pw-bob", "203.0.113.1"), 200)
	want(t, "a new name", login(t, srv, "carol", "pw-carol", "203.0.113.1"), 200)
	want(t, "a bad name", login(t, srv, "no spaces", "x", "203.0.113.1"), 400)

	clock.Advance("300")
	want(t, "after Retry-After", login(t, srv, "alice", "pw-alice", "203.0.113.1"), 200)
	want(t, "one more guess", login(t, srv, "alice", "guess", "203.0.113.1"), 401)
	want429(t, "and no more", login(t, srv, "alice", "pw-alice", "203.0.113.1"), "300", "too many failed logins for this username")
}

func TestFailedLoginsPerIP(t *testing.T) {
	srv, clock := startLimited(t, limits.Config{FailedLoginsPerIP: 3})
	for _, name := range []string{"alice", "bob", "carol"} {
		srv.Login(t, name)
	}
	const guesser = "203.0.113.7"
	for _, name := range []string{"alice", "bob", "carol"} {
		want(t, name+"'s wrong password", login(t, srv, name, "guess", guesser), 401)
	}
	refused := login(t, srv, "alice", "pw-alice", guesser)
	want429(t, "the guesser's next login", refused, "300", "too many failed logins from your address")
	// A name that does not exist is refused in the same words: the 429
	// tells nothing of the name.
	if other := login(t, srv, "nobody", "x", guesser); other != refused {
		t.Errorf("an unknown name from the guesser: %+v, want the same answer as a known one: %+v", other, refused)
	}
	want(t, "alice from another address", login(t, srv, "alice", "pw-alice", "203.0.113.8"), 200)

	// An IPv6 client counts as its /64.
	for range 3 {
		want(t, "a wrong password over IPv6", login(t, srv, "bob", "guess", "2001:db8::1"), 401)
	}
	want429(t, "the same /64", login(t, srv, "bob", "pw-bob", "2001:db8::2"), "300", "too many failed logins from your address")
	want(t, "another /64", login(t, srv, "bob", "pw-bob", "2001:db8:0:1::1"), 200)

	clock.Advance("300")
	want(t, "the guesser after Retry-After", login(t, srv, "alice", "pw-alice", guesser), 200)
}

// A flood of parallel guesses at one account gets no more tries than the
// name's budget: each is counted before its password is checked.
func TestParallelGuessesAreCountedUpFront(t *testing.T) {
	srv, _ := startLimited(t, limits.Config{FailedLoginsPerName: 5})
	srv.Login(t, "alice")
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			a := login(t, srv, "alice", "guess", "203.0.113.7")
			mu.Lock()
			statuses[a.status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if statuses[401] != 5 || statuses[429] != 35 {
		t.Errorf("40 parallel guesses answered %v, want 5 × 401 and 35 × 429", statuses)
	}
}

// Many right passwords at once from one address (a company behind one
// NAT at nine in the morning) are not "failed logins": the address's
// budget is charged by wrong passwords only.
func TestParallelLoginsFromOneAddress(t *testing.T) {
	srv, _ := startLimited(t, limits.Config{FailedLoginsPerIP: 3})
	var names []string
	for i := range 30 {
		names = append(names, fmt.Sprintf("worker%d", i))
		srv.Login(t, names[i])
	}
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Go(func() {
			a := login(t, srv, name, "pw-"+name, "198.51.100.1")
			mu.Lock()
			statuses[a.status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if statuses[200] != len(names) {
		t.Errorf("%d parallel right passwords from one address answered %v, want all 200", len(names), statuses)
	}
}

func TestRegistrationsPerIP(t *testing.T) {
	srv, clock := startLimited(t, limits.Config{RegistrationsPerIP: 2})
	const home = "203.0.113.7"
	alice := login(t, srv, "alice", "pw-alice", home)
	want(t, "1st registration", alice, 200)
	want(t, "2nd registration", login(t, srv, "bob", "pw-bob", home), 200)
	want429(t, "3rd registration", login(t, srv, "carol", "pw-carol", home), "1800", "too many new accounts from your address")
	// The refused registration registered nothing.
	if a := send(t, srv.URL, "GET", "/api/users/carol/messages", alice.token, "", nil); a.status != 404 {
		t.Errorf("carol after her refused registration: %d, want 404", a.status)
	}
	// Logins of registered names, and wrong passwords, are not
	// registrations.
	want(t, "alice again", login(t, srv, "alice", "pw-alice", home), 200)
	want(t, "a wrong password", login(t, srv, "bob", "guess", home), 401)
	want(t, "carol elsewhere", login(t, srv, "carol", "pw-carol", "203.0.113.8"), 200)

	clock.Advance("1800")
	want(t, "after Retry-After", login(t, srv, "dave", "pw-dave", home), 200)
	want429(t, "and no more", login(t, srv, "erin", "pw-erin", home), "1800", "too many new accounts from your address")
}

func TestRoomsPerUser(t *testing.T) {
	srv, clock := startLimited(t, limits.Config{RoomsPerUser: 2})
	alice, bob := srv.Login(t, "alice"), srv.Login(t, "bob")
	alice.Join("one")
	alice.Join("two")
	join := func(c *chattest.Client, room string) answer {
		return send(t, srv.URL, "POST", "/api/rooms/"+room+"/join", c.Token, "", nil)
	}
	want429(t, "a 3rd new room", join(alice, "three"), "1800", "too many new rooms")
	want(t, "an invalid name", join(alice, ".."), 400)
	// Joining rooms that exist is never limited; bob creates his own.
	alice.Join("one")
	bob.Join("three")
	bob.Join("four")
	alice.Join("three")
	if n := len(srv.App.Broker().Rooms(t.Context())); n != 4 {
		t.Errorf("%d rooms, want 4", n)
	}

	clock.Advance("1800")
	alice.Join("five")
	want429(t, "and no more", join(alice, "six"), "1800", "too many new rooms")
}

// Read marks are limited per user, rooms and conversations together: each
// that moves a marker is a write through the log, like a message.
func TestReadsPerUser(t *testing.T) {
	srv, clock := startLimited(t, limits.Config{ReadsPerUser: 2})
	alice, bob := srv.Login(t, "alice"), srv.Login(t, "bob")
	alice.Join("lobby")
	bob.Join("lobby")
	first, second := bob.Say("lobby", "one"), bob.Say("lobby", "two")
	mark := func(c *chattest.Client, path, id string) answer {
		return send(t, srv.URL, "POST", path, c.Token, "", map[string]string{"id": id})
	}
	want(t, "1st mark", mark(alice, "/api/rooms/lobby/read", first.ID), 200)
	want(t, "2nd mark", mark(alice, "/api/conversations/bob/read", first.ID), 200)
	want429(t, "3rd mark", mark(alice, "/api/rooms/lobby/read", second.ID), "30", "too many read marks")
	want(t, "bob's own budget", mark(bob, "/api/rooms/lobby/read", second.ID), 200)

	clock.Advance("30")
	want(t, "after Retry-After", mark(alice, "/api/rooms/lobby/read", second.ID), 200)
}

// --limits off lifts every limit, whatever the others say; the zero
// Config (what tests and embedders get) limits nothing either.
func TestLimitsOff(t *testing.T) {
	tiny := limits.Config{MessageRate: 1, MessageBurst: 1, FailedLoginsPerName: 1, FailedLoginsPerIP: 1,
		RegistrationsPerIP: 1, RoomsPerUser: 1, StreamsPerUser: 1}
	off := tiny
	off.Off = true
	for name, cfg := range map[string]limits.Config{"off": off, "zero": {}} {
		t.Run(name, func(t *testing.T) {
			srv, _ := startLimited(t, cfg)
			const from = "203.0.113.7"
			for i := range 3 {
				want(t, "a registration", login(t, srv, fmt.Sprint("user", i), "pw", from), 200)
				want(t, "a wrong password", login(t, srv, "user0", "guess", from), 401)
			}
			want(t, "the right password", login(t, srv, "user0", "pw", from), 200)
			alice := srv.Login(t, "alice")
			for i := range 3 {
				alice.Join(fmt.Sprint("room", i))
				alice.Stream("").Ready()
			}
			for i := range 30 {
				alice.Say("room0", fmt.Sprint(i))
			}
		})
	}
	// And the tiny limits do hold when on.
	srv, _ := startLimited(t, tiny)
	alice := srv.Login(t, "alice")
	alice.Join("room0")
	want(t, "a 2nd room", send(t, srv.URL, "POST", "/api/rooms/room1/join", alice.Token, "", nil), 429)
}

// Every 429 and the 503 of a login are in openapi.yaml, with their
// Retry-After.
func TestLimitRefusalsMatchOpenAPI(t *testing.T) {
	doc := loadSpec(t)
	srv, _ := startLimited(t, limits.Config{MessageRate: 1, MessageBurst: 1, FailedLoginsPerName: 1,
		FailedLoginsPerIP: 2, RegistrationsPerIP: 2, RoomsPerUser: 1, StreamsPerUser: 1})
	s := newSpecClient(t, doc, srv.URL)
	loginBody := func(name, password string) string {
		return `{"username":"` + name + `","password":"` + password + `"}`
	}
	alice, bob := s.login("alice"), s.login("bob")
	s.do(call{method: "POST", path: "/api/login", body: loginBody("carol", "pw"), wantStatus: 429})
	s.do(call{method: "POST", path: "/api/login", body: loginBody("alice", "guess"), wantStatus: 401})
	s.do(call{method: "POST", path: "/api/login", body: loginBody("alice", "pw-alice"), wantStatus: 429})
	s.do(call{method: "POST", path: "/api/login", body: loginBody("bob", "guess"), wantStatus: 401})
	s.do(call{method: "POST", path: "/api/login", body: loginBody("bob", "pw-bob"), wantStatus: 429})

	s.do(call{method: "POST", path: "/api/rooms/lobby/join", token: alice, wantStatus: 200})
	s.do(call{method: "POST", path: "/api/rooms/other/join", token: alice, wantStatus: 429})
	s.do(call{method: "POST", path: "/api/rooms/lobby/join", token: bob, wantStatus: 200})
	s.do(call{method: "POST", path: "/api/rooms/lobby/messages", token: alice, body: `{"text":"hi"}`, wantStatus: 201})
	s.do(call{method: "POST", path: "/api/rooms/lobby/messages", token: alice, body: `{"text":"hi"}`, wantStatus: 429})
	s.do(call{method: "POST", path: "/api/users/bob/messages", token: alice, body: `{"text":"hi"}`, wantStatus: 429})

	req := s.request(call{method: "GET", path: "/api/stream", token: alice})
	chattest.OpenStream(t, req).Ready()
	s.do(call{method: "GET", path: "/api/stream", token: alice, wantStatus: 429})

	for _, path := range []string{"/api/login", "/api/stream", "/api/rooms/{room}/join", "/api/rooms/{room}/messages", "/api/users/{name}/messages"} {
		item := doc.Paths.Find(path)
		op := item.Post
		if op == nil {
			op = item.Get
		}
		r := op.Responses.Status(429)
		if r == nil || r.Value == nil || r.Value.Headers["Retry-After"] == nil || !r.Value.Headers["Retry-After"].Value.Required {
			t.Errorf("%s: no 429 with a required Retry-After in openapi.yaml", path)
		}
	}
	if r := doc.Paths.Find("/api/login").Post.Responses.Status(503); r == nil || r.Value.Headers["Retry-After"] == nil {
		t.Errorf("/api/login: no 503 with Retry-After in openapi.yaml")
	}
}

// With --redis the limits are counted in Redis: two instances on one
// database and one Redis share each budget.
func TestLimitsHoldAcrossInstances(t *testing.T) {
	redisURL := os.Getenv("REDIS_URL")
	if redisURL == "" {
		redisURL = "redis://127.0.0.1:6379/0"
	}
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	defer rc.Close()
	if err := rc.Ping(t.Context()).Err(); err != nil {
		pgtest.Missing(t, "no redis at %s: %v", redisURL, err)
	}
	db := pgtest.FreshSchema(t, pgtest.URL(t))
	prefix := "ssechat:test:" + uuid.NewString() + ":"
	t.Cleanup(func() {
		keys, _ := rc.Keys(context.Background(), prefix+"*").Result()
		if len(keys) > 0 {
			rc.Del(context.Background(), keys...)
		}
	})
	instance := func() *chattest.Server {
		return chattest.Start(t, func(c *app.Config) {
			c.DB, c.Redis, c.RedisPrefix = db, redisURL, prefix
			c.HTTP.Limits = limits.Config{MessageRate: 0.01, MessageBurst: 2, RegistrationsPerIP: 3}
		})
	}
	a, b := instance(), instance()
	alice := a.Login(t, "alice")
	b.Login(t, "bob") // the 2nd registration from 127.0.0.1, on the other instance
	alice.Join("lobby")
	alice.Say("lobby", "through a")
	alice.On(b).Say("lobby", "through b")
	want429(t, "a 3rd message, through a", post(t, a, alice, "/api/rooms/lobby/messages", "no"), "100", "too many messages")
	want429(t, "a 3rd message, through b", post(t, b, alice.On(b), "/api/rooms/lobby/messages", "no"), "100", "too many messages")

	want(t, "the 3rd registration", login(t, a, "carol", "pw", ""), 200)
	want429(t, "a 4th registration, on the other instance", login(t, b, "dave", "pw", ""), "1200", "too many new accounts")

	// The buckets are keys under the cluster's prefix, which expire.
	ttl, err := rc.PTTL(t.Context(), prefix+"limit:messages:alice").Result()
	if err != nil || ttl <= 0 || ttl > 200*time.Second {
		t.Errorf("alice's message bucket: PTTL %v, %v; want at most 200 s", ttl, err)
	}
}
