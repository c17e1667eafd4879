package auth

import (
	"context"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ssechat/ssechat/chat"
	"github.com/ssechat/ssechat/store/sqlite"
)

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "auth.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// clock is a test clock that only moves when told.
type clock struct{ ms atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ms.Store(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).UnixMilli())
	return c
}
func (c *clock) Now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *clock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// ender records the sessions ended, and forgets them on the services
// that share the store, as the cluster's listener does.
type ender struct {
	mu       sync.Mutex
	keys     []string
	services []*Service
}

func (e *ender) EndSession(_ context.Context, key string) error {
	e.mu.Lock()
	e.keys = append(e.keys, key)
	services := e.services
	e.mu.Unlock()
	for _, s := range services {
		s.Forget(key)
	}
	return nil
}

func (e *ender) ended() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := slices.Clone(e.keys)
	slices.Sort(out)
	return out
}

// newSession opens a session for user straight in the store (no bcrypt)
// and returns its token.
func newSession(t testing.TB, s *Service, user string) string {
	t.Helper()
	token := uuid.NewString()
	if err := s.store.CreateSession(context.Background(), hashToken(token), user, s.now()); err != nil {
		t.Fatal(err)
	}
	return token
}

func mustAuth(t *testing.T, s *Service, token, want string) (renewed bool) {
	t.Helper()
	user, renewed, err := s.Authenticate(context.Background(), token)
	if err != nil || user != want {
		t.Fatalf("Authenticate = %q, %v; want %s", user, err, want)
	}
	return renewed
}

func mustRefuse(t *testing.T, s *Service, token string) {
	t.Helper()
	if user, _, err := s.Authenticate(context.Background(), token); chat.ErrorCode(err) != chat.EUNAUTHORIZED {
		t.Fatalf("Authenticate = %q, %v; want unauthorized", user, err)
	}
}

func lastUsed(t *testing.T, s *Service, token string) time.Time {
	t.Helper()
	sess, err := s.store.Session(context.Background(), hashToken(token))
	if err != nil {
		t.Fatal(err)
	}
	return sess.LastUsed
}

// Expiry slides: a session lives the TTL after its last recorded use; use
// is recorded at most once an hour, and renewed says when it was.
func TestSessionExpirySlides(t *testing.T) {
	clk := newClock()
	const ttl = 48 * time.Hour
	st := openStore(t)
	s := New(st, &ender{}, 4, WithSessionTTL(ttl), WithClock(clk.Now))
	if s.SessionTTL() != ttl {
		t.Fatalf("SessionTTL = %v", s.SessionTTL())
	}
	opened := clk.Now()
	token := newSession(t, s, "alice")

	clk.Advance(30 * time.Minute)
	if mustAuth(t, s, token, "alice") {
		t.Fatal("renewed half an hour after the login: use is recorded at most once an hour")
	}
	if got := lastUsed(t, s, token); !got.Equal(opened) {
		t.Fatalf("last use %v, want the login's %v", got, opened)
	}
	clk.Advance(90 * time.Minute)
	if !mustAuth(t, s, token, "alice") {
		t.Fatal("not renewed two hours after the login")
	}
	touched := clk.Now()
	if got := lastUsed(t, s, token); !got.Equal(touched) {
		t.Fatalf("last use %v, want %v", got, touched)
	}
	clk.Advance(10 * time.Minute)
	if mustAuth(t, s, token, "alice") {
		t.Fatal("renewed ten minutes after the last renewal")
	}

	// Unused for exactly the TTL since the recorded use: still alive (the
	// pruner deletes what was used before now−TTL). A millisecond more:
	// expired, though the cache still holds it.
	other := New(st, &ender{}, 4, WithSessionTTL(ttl), WithClock(clk.Now))
	clk.ms.Store(touched.Add(ttl).UnixMilli())
	if ok, err := other.Valid(context.Background(), s.SessionKey(token)); err != nil || !ok {
		t.Fatalf("Valid at exactly the TTL = %v, %v", ok, err)
	}
	clk.Advance(time.Millisecond)
	mustRefuse(t, s, token)
	mustRefuse(t, other, token)
	if ok, err := s.Valid(context.Background(), s.SessionKey(token)); err != nil || ok {
		t.Fatalf("Valid after the TTL = %v, %v", ok, err)
	}
	if _, err := s.PruneSessions(context.Background()); err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, s, token)
}

// An instance whose cache says a session expired asks the store, where
// another instance may have recorded a later use.
func TestExpiredInTheCacheIsCheckedInTheStore(t *testing.T) {
	clk := newClock()
	const ttl = 48 * time.Hour
	st := openStore(t)
	a := New(st, &ender{}, 4, WithSessionTTL(ttl), WithClock(clk.Now))
	b := New(st, &ender{}, 4, WithSessionTTL(ttl), WithClock(clk.Now))
	token := newSession(t, a, "alice")
	mustAuth(t, b, token, "alice") // b caches the login's time
	clk.Advance(24 * time.Hour)
	if !mustAuth(t, a, token, "alice") {
		t.Fatal("a did not record the use")
	}
	clk.Advance(30 * time.Hour) // 54h after the login, 30h after a's use
	if !mustAuth(t, b, token, "alice") {
		t.Fatal("b did not record its use after reading the session again")
	}
}

// Logout everywhere ends every session of the user and tells every
// instance; other users' sessions stay.
func TestLogoutAll(t *testing.T) {
	e := &ender{}
	s := New(openStore(t), e, 4)
	var alice []string
	for range 3 {
		token := newSession(t, s, "alice")
		mustAuth(t, s, token, "alice") // cached
		alice = append(alice, token)
	}
	bob := newSession(t, s, "bob")
	mustAuth(t, s, bob, "bob")
	if err := s.LogoutAll(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, token := range alice {
		mustRefuse(t, s, token)
		want = append(want, s.SessionKey(token))
	}
	slices.Sort(want)
	if got := e.ended(); !slices.Equal(got, want) {
		t.Fatalf("ended %v, want alice's %v", got, want)
	}
	mustAuth(t, s, bob, "bob")
	if n := s.cached.Load(); n != 1 {
		t.Fatalf("%d sessions cached, want bob's alone", n)
	}
}

// Pruning deletes the expired sessions, in batches, and ends each on
// every instance (their streams close); sessions in use stay.
func TestPruneSessionsEndsExpiredOnes(t *testing.T) {
	clk := newClock()
	const ttl = 48 * time.Hour
	e := &ender{}
	s := New(openStore(t), e, 4, WithSessionTTL(ttl), WithClock(clk.Now))
	e.services = []*Service{s}
	var expired []string
	for range pruneBatch + 3 { // more than one batch
		expired = append(expired, s.SessionKey(newSession(t, s, "alice")))
	}
	slices.Sort(expired)
	old := newSession(t, s, "alice")
	mustAuth(t, s, old, "alice") // cached: pruning must evict it
	bob := newSession(t, s, "bob")
	clk.Advance(47 * time.Hour)
	mustAuth(t, s, bob, "bob") // recorded: bob stays
	clk.Advance(2 * time.Hour)

	n, err := s.PruneSessions(context.Background())
	if err != nil || n != len(expired)+1 {
		t.Fatalf("PruneSessions = %d, %v; want %d", n, err, len(expired)+1)
	}
	want := slices.Sorted(slices.Values(append(slices.Clone(expired), s.SessionKey(old))))
	if got := e.ended(); !slices.Equal(got, want) {
		t.Fatalf("ended %d sessions, want the %d expired ones", len(got), len(want))
	}
	if _, cached := s.sessions.Load(string(hashToken(old))); cached {
		t.Fatal("a pruned session is still cached")
	}
	mustRefuse(t, s, old)
	mustAuth(t, s, bob, "bob")

	stop := s.KeepSessions(context.Background(), time.Hour, slog.New(slog.DiscardHandler))
	stop()
	stop()
}

// gatedStore is a store with a hook that runs after every session read,
// while Authenticate holds what it read and has not cached it yet.
type gatedStore struct {
	Store
	hook atomic.Pointer[func()]
}

func (g *gatedStore) Session(ctx context.Context, tokenHash []byte) (chat.Session, error) {
	sess, err := g.Store.Session(ctx, tokenHash)
	if f := g.hook.Load(); f != nil {
		(*f)()
	}
	return sess, err
}

// A logout is never undone by the session cache: once Logout (or
// LogoutAll) has returned, the token never works again, even when a store
// read of Authenticate was in flight while it ran and finishes after it.
// The free race found the window the first cache had between checking
// the epoch and storing the entry: a logout that fell in it left the
// session cached for good (about once in 5,000 rounds here).
func TestLogoutIsNeverUndoneByAnInFlightRead(t *testing.T) {
	for _, tc := range []struct {
		mode, store string
		rounds      int
	}{
		{"Logout", "sqlite", 100},
		{"LogoutAll", "sqlite", 100},
		// The same over a store in memory: no fsync, many more rounds.
		{"Logout", "memory", 5000},
		{"LogoutAll", "memory", 5000},
	} {
		mode := tc.mode
		t.Run(tc.mode+"/"+tc.store, func(t *testing.T) {
			st := &gatedStore{Store: openStore(t)}
			if tc.store == "memory" {
				st.Store = &memStore{Store: st.Store, sessions: map[string]chat.Session{}}
			}
			e := &ender{}
			s := New(st, e, 4)
			e.services = []*Service{s}
			ctx := context.Background()
			logout := func(token string) {
				t.Helper()
				var err error
				if mode == "Logout" {
					err = s.Logout(ctx, token)
				} else {
					err = s.LogoutAll(ctx, "alice")
				}
				if err != nil {
					t.Fatal(err)
				}
			}

			// The read is held until Logout has returned.
			for range 20 {
				token := newSession(t, s, "alice")
				read, release := make(chan struct{}), make(chan struct{})
				var once sync.Once
				hook := func() { once.Do(func() { close(read); <-release }) }
				st.hook.Store(&hook)
				done := make(chan struct{})
				go func() {
					defer close(done)
					s.Authenticate(ctx, token) // may answer alice: it began before the logout
				}()
				<-read
				logout(token)
				close(release)
				<-done
				st.hook.Store(nil)
				mustRefuse(t, s, token)
				if _, cached := s.sessions.Load(string(hashToken(token))); cached {
					t.Fatal("the read in flight cached the session after the logout")
				}
			}

			// A free race: readers hammer the token, from a cold or a warm
			// cache, while Logout runs; the reads yield at random points.
			// No Authenticate that starts after Logout returned may pass.
			yield := func() {
				for range time.Now().UnixNano() % 3 {
					runtime.Gosched()
				}
			}
			st.hook.Store(&yield)
			defer st.hook.Store(nil)
			for i := range tc.rounds {
				token := newSession(t, s, "alice")
				if i%2 == 0 {
					mustAuth(t, s, token, "alice")
				}
				var loggedOut atomic.Bool
				var violations atomic.Int64
				var wg sync.WaitGroup
				for range 3 {
					wg.Go(func() {
						for after := 0; after < 5; {
							began := loggedOut.Load()
							_, _, err := s.Authenticate(ctx, token)
							if began {
								after++
								if err == nil {
									violations.Add(1)
								}
							}
							runtime.Gosched() // let the logout run on a small machine
						}
					})
				}
				yield()
				logout(token)
				loggedOut.Store(true)
				wg.Wait()
				if n := violations.Load(); n > 0 {
					t.Fatalf("round %d: the token worked %d times after %s returned", i, n, mode)
				}
				mustRefuse(t, s, token)
			}
			if got := len(e.ended()); got < tc.rounds+20 {
				t.Fatalf("%d sessions ended, want every one logged out", got)
			}
		})
	}
}

// memStore keeps sessions in a map (accounts stay in the embedded store).
type memStore struct {
	Store
	mu       sync.Mutex
	sessions map[string]chat.Session
}

func (m *memStore) CreateSession(_ context.Context, tokenHash []byte, user string, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sessions[string(tokenHash)] = chat.Session{User: user, Created: now, LastUsed: now}
	return nil
}

func (m *memStore) Session(_ context.Context, tokenHash []byte) (chat.Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	sess, ok := m.sessions[string(tokenHash)]
	if !ok {
		return chat.Session{}, chat.Errorf(chat.EUNAUTHORIZED, "invalid or expired session")
	}
	return sess, nil
}

func (m *memStore) DeleteSession(_ context.Context, tokenHash []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sessions, string(tokenHash))
	return nil
}

func (m *memStore) DeleteUserSessions(_ context.Context, user string) ([][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var keys [][]byte
	for k, sess := range m.sessions {
		if sess.User == user {
			keys = append(keys, []byte(k))
			delete(m.sessions, k)
		}
	}
	return keys, nil
}
