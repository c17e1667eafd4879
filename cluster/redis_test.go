package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

// These tests need a Redis: REDIS_URL, or redis://127.0.0.1:6379/0. The
// restart tests also need the redis-server binary, and run their own
// server on a free port: the shared one is never stopped. Without them
// the tests skip, unless CHAT_REQUIRE_SERVICES=1.

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitLimit bounds every wait; the fast timings below make the real waits
// a fraction of it.
const waitLimit = 10 * time.Second

func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CHAT_REQUIRE_SERVICES") == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format+" (set CHAT_REQUIRE_SERVICES=1 to fail instead)", args...)
}

// sharedRedis returns the URL of the Redis the tests share, and deletes
// the test's keys at the end.
func sharedRedis(t *testing.T, prefix string) string {
	t.Helper()
	url := os.Getenv("REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("REDIS_URL %q: %v", url, err)
	}
	opt.MaxRetries, opt.DialerRetries = -1, 1 // fail fast, with the dial's own error
	c := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		unavailable(t, "no redis at %s: %v", url, err)
	}
	t.Cleanup(func() {
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		keys, err := c.Keys(ctx, prefix+"*").Result()
		if err == nil && len(keys) > 0 {
			err = c.Del(ctx, keys...).Err()
		}
		if err != nil {
			t.Logf("deleting the test's keys: %v", err)
		}
	})
	return url
}

func newPrefix() string { return "ssechat:test:" + uuid.NewString() + ":" }

// recorder is a Listener that keeps what it was told.
type recorder struct {
	mu       sync.Mutex
	heads    []int64
	presence []string // "+user" or "-user"
	sessions []string
	resyncs  int
	// onResync, if set, runs in Resync, as the broker's reload would.
	onResync func()
}

func (r *recorder) LogGrew(head int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.heads = append(r.heads, head)
}

func (r *recorder) PresenceChanged(user string, online bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sign := "-"
	if online {
		sign = "+"
	}
	r.presence = append(r.presence, sign+user)
}

func (r *recorder) SessionEnded(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sessions = append(r.sessions, key)
}

func (r *recorder) Resync() {
	r.mu.Lock()
	r.resyncs++
	hook := r.onResync
	r.mu.Unlock()
	if hook != nil {
		hook()
	}
}

// count says how often the listener was told that user came online (+)
// or went offline (-).
func (r *recorder) count(user string, online bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	want := "-" + user
	if online {
		want = "+" + user
	}
	n := 0
	for _, p := range r.presence {
		if p == want {
			n++
		}
	}
	return n
}

func (r *recorder) sawHead(head int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.heads, head)
}

func (r *recorder) sawSession(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.sessions, key)
}

func (r *recorder) resyncCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resyncs
}

// node is one instance and what its listener heard.
type node struct {
	*Redis
	rec *recorder
}

// fast shrinks the intervals so that sweeps happen within the test.
func fast(t *timing) {
	t.heartbeat = 50 * time.Millisecond
	t.sweep = 50 * time.Millisecond
	t.deadAfter = 500 * time.Millisecond
}

// start opens and starts an instance, and waits for its subscription.
func start(t *testing.T, url, prefix string, tune func(*timing)) *node {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	r, err := Open(ctx, url, prefix, uuid.NewString(), log)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if tune != nil {
		tune(&r.timing)
	}
	n := &node{Redis: r, rec: &recorder{}}
	r.Start(ctx, n.rec)
	t.Cleanup(func() { _ = r.Close() })
	select {
	case <-r.ready:
	case <-time.After(waitLimit):
		t.Fatal("subscription not confirmed")
	}
	return n
}

// waitFor polls cond until it holds or the limit passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s still not: %s", waitLimit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// flush waits until every node heard a marker published after all that
// came before: Redis delivers to a subscriber in the order it ran the
// PUBLISHes, so whatever else was coming has arrived by then. That turns
// "heard nothing more" into something a test can wait for.
func flush(t *testing.T, via *node, nodes ...*node) {
	t.Helper()
	marker := "flush-" + uuid.NewString()
	if err := via.EndSession(context.Background(), marker); err != nil {
		t.Fatalf("flush: %v", err)
	}
	for i, n := range nodes {
		waitFor(t, fmt.Sprintf("node %d hears %s", i, marker), func() bool { return n.rec.sawSession(marker) })
	}
}

func setLocal(t *testing.T, n *node, user string, holds bool) {
	t.Helper()
	streams := 0
	if holds {
		streams = 1
	}
	setStreams(t, n, user, streams)
}

func setStreams(t *testing.T, n *node, user string, streams int) {
	t.Helper()
	if err := n.SetLocal(context.Background(), user, streams); err != nil {
		t.Fatalf("SetLocal(%q, %d): %v", user, streams, err)
	}
}

func online(t *testing.T, n *node) []string {
	t.Helper()
	users, err := n.Online(context.Background())
	if err != nil {
		t.Fatalf("online: %v", err)
	}
	slices.Sort(users)
	return users
}

func wantOnline(t *testing.T, n *node, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if got := online(t, n); !slices.Equal(got, want) {
		t.Fatalf("online = %q, want %q", got, want)
	}
}

// wantCount checks how often each node heard user come online (+) or go
// offline (-).
func wantCount(t *testing.T, user string, isOnline bool, want int, nodes ...*node) {
	t.Helper()
	for i, n := range nodes {
		if got := n.rec.count(user, isOnline); got != want {
			t.Errorf("node %d heard %q online=%t %d times, want %d", i, user, isOnline, got, want)
		}
	}
}

func TestRedisAnnounceReachesAll(t *testing.T) {
	prefix := newPrefix()
	url := sharedRedis(t, prefix)
	a, b := start(t, url, prefix, nil), start(t, url, prefix, nil)

	a.Announce(context.Background(), 42)
	b.Announce(context.Background(), 43)
	for i, n := range []*node{a, b} {
		waitFor(t, fmt.Sprintf("node %d hears heads 42 and 43", i), func() bool {
			return n.rec.sawHead(42) && n.rec.sawHead(43)
		})
	}
}

func TestRedisAnnounceIgnoresCanceledContext(t *testing.T) {
	prefix := newPrefix()
	url := sharedRedis(t, prefix)
	a := start(t, url, prefix, nil)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	a.Announce(ctx, 7)
	waitFor(t, "head 7 heard", func() bool { return a.rec.sawHead(7) })
}

func TestRedisPresenceTransitionsOnce(t *testing.T) {
	prefix := newPrefix()
	url := sharedRedis(t, prefix)
	a, b := start(t, url, prefix, nil), start(t, url, prefix, nil)

	setLocal(t, a, "ann", true)
	setLocal(t, b, "ann", true)
	flush(t, a, a, b)
	wantCount(t, "ann", true, 1, a, b)
	wantOnline(t, a, "ann")

	// B drops its last stream, A still holds one: no transition.
	setLocal(t, b, "ann", false)
	flush(t, b, a, b)
	wantCount(t, "ann", false, 0, a, b)
	wantOnline(t, b, "ann")

	setLocal(t, a, "ann", false)
	flush(t, a, a, b)
	wantCount(t, "ann", false, 1, a, b)
	wantCount(t, "ann", true, 1, a, b)
	wantOnline(t, a)
}

func TestRedisSetLocalIdempotent(t *testing.T) {
	prefix := newPrefix()
	url := sharedRedis(t, prefix)
	a, b := start(t, url, prefix, nil), start(t, url, prefix, nil)

	setLocal(t, a, "bob", true)
	setLocal(t, a, "bob", true)
	flush(t, a, a, b)
	wantCount(t, "bob", true, 1, a, b)

	setLocal(t, a, "bob", false)
	setLocal(t, a, "bob", false)
	flush(t, a, a, b)
	wantCount(t, "bob", false, 1, a, b)
	wantOnline(t, b)
}

func TestRedisOnlineListsEveryInstance(t *testing.T) {
	prefix := newPrefix()
	url := sharedRedis(t, prefix)
	a, b := start(t, url, prefix, nil), start(t, url, prefix, nil)

	wantOnline(t, a)
	setLocal(t, a, "ann", true)
	setLocal(t, b, "bob", true)
	setLocal(t, b, "cy: with spaces & colons", true)
	wantOnline(t, a, "ann", "bob", "cy: with spaces & colons")
	wantOnline(t, b, "ann", "bob", "cy: with spaces & colons")
}

func TestRedisEndSessionReachesAll(t *testing.T) {
	prefix := newPrefix()
	url := sharedRedis(t, prefix)
	a, b, c := start(t, url, prefix, nil), start(t, url, prefix, nil), start(t, url, prefix, nil)

	if err := b.EndSession(context.Background(), "key-1"); err != nil {
		t.Fatal(err)
	}
	for i, n := range []*node{a, b, c} {
		waitFor(t, fmt.Sprintf("node %d hears key-1 ended", i), func() bool { return n.rec.sawSession("key-1") })
	}
}

func TestRedisDeadInstanceIsSwept(t *testing.T) {
	prefix := newPrefix()
	url := sharedRedis(t, prefix)
	a, b, c := start(t, url, prefix, fast), start(t, url, prefix, fast), start(t, url, prefix, fast)

	setLocal(t, a, "solo", true)
	setLocal(t, a, "shared", true)
	setLocal(t, b, "shared", true)
	flush(t, a, b, c)

	// A dies without a goodbye, as with kill -9.
	if err := a.shutdown(false); err != nil {
		t.Fatal(err)
	}
	for i, n := range []*node{b, c} {
		waitFor(t, fmt.Sprintf("node %d hears solo go offline", i), func() bool { return n.rec.count("solo", false) > 0 })
	}
	// More sweeps find nothing more to drop.
	for _, n := range []*node{b, c} {
		if err := n.sweep(); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, b, b, c)
	wantCount(t, "solo", false, 1, b, c)
	wantCount(t, "shared", false, 0, b, c)
	wantOnline(t, b, "shared")
	if err := b.client.ZScore(context.Background(), prefix+"instances", a.instance).Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("dead instance still registered: %v", err)
	}
	if n, err := b.client.Exists(context.Background(), prefix+"inst:"+a.instance).Result(); err != nil || n != 0 {
		t.Errorf("dead instance's user set: exists=%d, err=%v", n, err)
	}
}

// wantElsewhere waits until n counts want streams of user on the other
// instances.
func wantElsewhere(t *testing.T, n *node, user string, want int) {
	t.Helper()
	var got int
	var err error
	deadline := time.Now().Add(waitLimit)
	for {
		if got, err = n.StreamsElsewhere(context.Background(), user); err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s counts %d streams of %s elsewhere (err %v), want %d", n.instance, got, user, err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Each instance sees the streams the others hold, never its own; the
// counts follow SetLocal, survive Redis forgetting the instance (the
// heartbeat's sync restores them) and leave with a dead instance.
func TestRedisStreamsElsewhere(t *testing.T) {
	prefix := newPrefix()
	url := sharedRedis(t, prefix)
	a, b, c := start(t, url, prefix, fast), start(t, url, prefix, fast), start(t, url, prefix, fast)
	ctx := context.Background()

	setStreams(t, a, "ann", 2)
	setStreams(t, b, "ann", 3)
	wantElsewhere(t, a, "ann", 3)
	wantElsewhere(t, b, "ann", 2)
	wantElsewhere(t, c, "ann", 5)
	wantElsewhere(t, c, "nobody", 0)

	setStreams(t, b, "ann", 1)
	wantElsewhere(t, c, "ann", 3)
	setStreams(t, b, "ann", 0)
	wantElsewhere(t, c, "ann", 2)
	wantElsewhere(t, a, "ann", 0)
	setStreams(t, b, "ann", 4)

	// Redis forgot B (as after a restart): its next beat syncs its counts.
	if err := b.client.ZRem(ctx, prefix+"instances", b.instance).Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.client.Del(ctx, prefix+"streams:ann").Err(); err != nil {
		t.Fatal(err)
	}
	if err := b.beat(); err != nil {
		t.Fatal(err)
	}
	wantElsewhere(t, a, "ann", 4)
	// A's streams of ann close: B's remain.
	setStreams(t, a, "ann", 0)
	wantElsewhere(t, c, "ann", 4)

	// B dies without a goodbye: once swept, its streams count no more.
	if err := b.shutdown(false); err != nil {
		t.Fatal(err)
	}
	wantElsewhere(t, c, "ann", 0)
	if n, err := c.client.Exists(ctx, prefix+"streams:ann").Result(); err != nil || n != 0 {
		t.Errorf("the dead instance's counts: exists=%d, err=%v", n, err)
	}
}

func TestRedisCloseSaysGoodbye(t *testing.T) {
	prefix := newPrefix()
	url := sharedRedis(t, prefix)
	a, b := start(t, url, prefix, nil), start(t, url, prefix, nil)

	setLocal(t, a, "solo", true)
	setLocal(t, a, "shared", true)
	setLocal(t, b, "shared", true)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "solo goes offline", func() bool { return b.rec.count("solo", false) > 0 })
	flush(t, b, b)
	wantCount(t, "solo", false, 1, b)
	wantCount(t, "shared", false, 0, b)
	wantOnline(t, b, "shared")
	if err := b.client.ZScore(context.Background(), prefix+"instances", a.instance).Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("closed instance still registered: %v", err)
	}
	if err := a.SetLocal(context.Background(), "late", 1); err == nil {
		t.Error("SetLocal after Close succeeded")
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestRedisCloseLeavesNoGoroutines(t *testing.T) {
	prefix := newPrefix()
	url := sharedRedis(t, prefix)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	a, b := start(t, url, prefix, fast), start(t, url, prefix, fast)
	setLocal(t, a, "ann", true)
	a.Announce(context.Background(), 1)
	flush(t, a, a, b)
	for _, n := range []*node{a, b} {
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRedisPrefixesAreIsolated(t *testing.T) {
	p1, p2 := newPrefix(), newPrefix()
	url := sharedRedis(t, p1)
	sharedRedis(t, p2)
	a, b := start(t, url, p1, nil), start(t, url, p2, nil)

	a.Announce(context.Background(), 5)
	setLocal(t, a, "ann", true)
	if err := a.EndSession(context.Background(), "key-a"); err != nil {
		t.Fatal(err)
	}
	flush(t, b, b)
	b.rec.mu.Lock()
	heard := len(b.rec.heads) + len(b.rec.presence) + len(b.rec.sessions)
	b.rec.mu.Unlock()
	if heard != 1 { // the flush marker
		t.Errorf("other prefix heard %d notices, want only its own marker", heard)
	}
	wantOnline(t, b)
	wantOnline(t, a, "ann")
}

// A paused instance is taken for dead and swept; once it beats again it
// registers its users again.
func TestRedisSweptInstanceRegistersAgain(t *testing.T) {
	prefix := newPrefix()
	url := sharedRedis(t, prefix)
	slowDeath := func(tm *timing) {
		fast(tm)
		tm.deadAfter = time.Hour // only the test sweeps
	}
	a, b := start(t, url, prefix, slowDeath), start(t, url, prefix, slowDeath)

	setLocal(t, a, "ann", true)
	waitFor(t, "ann online", func() bool { return b.rec.count("ann", true) == 1 })

	// What a sweeper does to an instance it takes for dead.
	if err := goodbyeScript.Run(context.Background(), b.client, nil, prefix, a.instance).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ann offline", func() bool { return b.rec.count("ann", false) == 1 })
	waitFor(t, "ann online again", func() bool { return b.rec.count("ann", true) == 2 })
	wantOnline(t, b, "ann")
}

func TestRedisOpenFailsWithoutRedis(t *testing.T) {
	url := "redis://127.0.0.1:" + strconv.Itoa(freePort(t)) + "/0"
	began := time.Now()
	r, err := Open(context.Background(), url, newPrefix(), uuid.NewString(), nil)
	if err == nil {
		_ = r.Close()
		t.Fatal("Open succeeded with nothing listening")
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("Open took %s to fail", d)
	}
}

func TestRedisDefaultTimingBoundsDeath(t *testing.T) {
	// A user whose last stream was on a killed instance must go offline
	// within 30 s: the last beat may be a full interval before the kill.
	d := defaultTiming
	if worst := d.heartbeat + d.deadAfter + d.sweep; worst > 30*time.Second {
		t.Errorf("a dead instance's users stay online up to %s", worst)
	}
}

// privateRedis is a redis-server of the test's own, which it may kill.
type privateRedis struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
}

func newPrivateRedis(t *testing.T) *privateRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		unavailable(t, "no redis-server binary: %v", err)
	}
	s := &privateRedis{t: t, port: freePort(t), dir: t.TempDir()}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *privateRedis) url() string { return "redis://127.0.0.1:" + strconv.Itoa(s.port) + "/0" }

func (s *privateRedis) start() {
	s.t.Helper()
	s.cmd = exec.Command("redis-server", "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(s.port), MaxRetries: -1})
	defer c.Close()
	waitFor(s.t, "private redis answers", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		return c.Ping(ctx).Err() == nil
	})
}

func (s *privateRedis) stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestRedisRestart(t *testing.T) {
	srv := newPrivateRedis(t)
	tune := func(tm *timing) {
		tm.heartbeat = 100 * time.Millisecond
		tm.sweep = 100 * time.Millisecond
		tm.deadAfter = 5 * time.Second
	}
	prefix := newPrefix()
	a, b := start(t, srv.url(), prefix, tune), start(t, srv.url(), prefix, tune)

	setLocal(t, a, "ann", true)
	setLocal(t, b, "bob", true)
	flush(t, a, a, b)
	// What the listener finds when it reloads on Resync: Redis answers,
	// and this instance's own users are registered already.
	var reloadMu sync.Mutex
	var reloaded []string
	var reloadErr error
	a.rec.mu.Lock()
	a.rec.onResync = func() {
		users, err := a.Online(context.Background())
		slices.Sort(users)
		reloadMu.Lock()
		defer reloadMu.Unlock()
		reloaded, reloadErr = users, err
	}
	a.rec.mu.Unlock()

	// Every instance resyncs once at its first subscription: count the
	// ones that follow.
	resyncsBefore := []int{a.rec.resyncCount(), b.rec.resyncCount()}
	srv.stop()
	ctx := context.Background()
	if err := a.Ping(ctx); err == nil {
		t.Fatal("Ping succeeded with redis down")
	}
	// The caller is told, and retries later; the wish is kept meanwhile.
	if err := a.SetLocal(ctx, "cy", 1); err == nil {
		t.Fatal("SetLocal succeeded with redis down")
	}
	a.Announce(ctx, 99) // must come back, not hang
	// The stream cap is told it cannot know, and counts locally.
	if _, err := a.StreamsElsewhere(ctx, "bob"); err == nil {
		t.Fatal("StreamsElsewhere succeeded with redis down")
	}

	// Stay down a while (the outage itself, not a synchronisation): the
	// reconnect loops must back off, not spin.
	const outage = 1500 * time.Millisecond
	cpu0, wall0 := cpuTime(t), time.Now()
	time.Sleep(outage)
	if cpu, wall := cpuTime(t)-cpu0, time.Since(wall0); cpu > wall/2 {
		t.Errorf("while redis was down the process used %s of CPU in %s", cpu, wall)
	}

	srv.start() // empty: it ran without persistence
	for i, n := range []*node{a, b} {
		waitFor(t, fmt.Sprintf("node %d resyncs", i), func() bool { return n.rec.resyncCount() > resyncsBefore[i] })
	}
	reloadMu.Lock()
	if reloadErr != nil {
		t.Errorf("Online() in Resync: %v", reloadErr)
	} else if !slices.Contains(reloaded, "ann") || !slices.Contains(reloaded, "cy") {
		t.Errorf("Online() in Resync = %q, want this instance's ann and cy in it", reloaded)
	}
	reloadMu.Unlock()
	waitFor(t, "users registered again", func() bool {
		users, err := b.Online(ctx)
		slices.Sort(users)
		return err == nil && slices.Equal(users, []string{"ann", "bob", "cy"})
	})
	// The stream counts came back with the users.
	waitFor(t, "cy's stream counted again", func() bool {
		n, err := b.StreamsElsewhere(ctx, "cy")
		return err == nil && n == 1
	})
	a.Announce(ctx, 100)
	for i, n := range []*node{a, b} {
		waitFor(t, fmt.Sprintf("node %d hears head 100", i), func() bool { return n.rec.sawHead(100) })
	}
	setLocal(t, b, "bob", false)
	waitFor(t, "bob offline", func() bool { return a.rec.count("bob", false) == 1 })
}

// Close must not hang on a Redis that is gone, nor leave goroutines.
func TestRedisCloseWhileDown(t *testing.T) {
	srv := newPrivateRedis(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	a := start(t, srv.url(), newPrefix(), fast)
	setLocal(t, a, "ann", true)

	srv.stop()
	began := time.Now()
	if err := a.Close(); err == nil {
		t.Error("Close reported a goodbye to a Redis that is gone")
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("Close took %s", d)
	}
}

// A subscription that fails at Start is retried, and ends in a Resync:
// news may have been missed meanwhile.
func TestRedisStartWhileDown(t *testing.T) {
	srv := newPrivateRedis(t)
	ctx := context.Background()
	r, err := Open(ctx, srv.url(), newPrefix(), uuid.NewString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	fast(&r.timing)
	rec := &recorder{}
	t.Cleanup(func() { _ = r.Close() })

	srv.stop()
	began := time.Now()
	r.Start(ctx, rec)
	if d := time.Since(began); d > 3*time.Second {
		t.Errorf("Start took %s with redis down", d)
	}
	srv.start()
	waitFor(t, "resync after the late subscription", func() bool { return rec.resyncCount() == 1 })
	select {
	case <-r.ready:
	default:
		t.Error("subscription not marked ready")
	}
	r.Announce(ctx, 3)
	waitFor(t, "head 3 heard", func() bool { return rec.sawHead(3) })
}
