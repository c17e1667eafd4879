package limits

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// These tests need a Redis: REDIS_URL, or redis://127.0.0.1:6379/0. Each
// uses a prefix of its own and deletes its keys. Without Redis they skip,
// unless CHAT_REQUIRE_SERVICES=1, which fails them.

func redisURL() string {
	if url := os.Getenv("REDIS_URL"); url != "" {
		return url
	}
	return "redis://127.0.0.1:6379/0"
}

// sharedRedis returns a client of the tests' Redis and a fresh prefix
// whose keys are deleted when the test ends.
func sharedRedis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	opt, err := redis.ParseURL(redisURL())
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	opt.MaxRetries, opt.DialerRetries = -1, 1
	c := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		if os.Getenv("CHAT_REQUIRE_SERVICES") == "1" {
			t.Fatalf("no redis at %s: %v", redisURL(), err)
		}
		t.Skipf("no redis at %s: %v (set CHAT_REQUIRE_SERVICES=1 to fail instead)", redisURL(), err)
	}
	prefix := "ssechat:test:" + uuid.NewString() + ":"
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
	return c, prefix
}

func TestRedisConformance(t *testing.T) {
	conformance(t, func(t *testing.T) Backend {
		c, prefix := sharedRedis(t)
		return NewRedis(c, prefix, nil)
	})
}

// Two instances, each with its own connection, take from one budget.
func TestRedisInstancesShareABudget(t *testing.T) {
	_, prefix := sharedRedis(t)
	var limiters []Limiter
	for range 2 {
		r, err := OpenRedis(redisURL(), prefix, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		limiters = append(limiters, r.Limiter(PerWindow("messages", 4, time.Hour)))
	}
	a, b := limiters[0], limiters[1]
	mustAllow(t, a, "alice")
	mustAllow(t, b, "alice")
	mustAllow(t, a, "alice")
	mustAllow(t, b, "alice")
	waitA, waitB := mustRefuse(t, a, "alice"), mustRefuse(t, b, "alice")
	if d := waitA - waitB; d < 0 || d > time.Second || waitA > 15*time.Minute || waitA < 14*time.Minute {
		t.Errorf("retry after %v and %v, want both ≈ 15m, the second a bit later", waitA, waitB)
	}
	a.Refund(context.Background(), "alice")
	mustAllow(t, b, "alice") // a's refund is b's token
	mustRefuse(t, a, "alice")
	mustAllow(t, b, "bob")
}

// A bucket is one key, with the cluster's prefix, that expires when the
// bucket is full again; a refund that fills it deletes it.
func TestRedisKeysExpireWhenFull(t *testing.T) {
	c, prefix := sharedRedis(t)
	ctx := context.Background()
	l := NewRedis(c, prefix, nil).Limiter(PerWindow("rooms", 3, time.Hour))
	mustAllow(t, l, "alice")
	mustAllow(t, l, "alice")
	key := prefix + "limit:rooms:alice"
	ttl, err := c.PTTL(ctx, key).Result()
	if err != nil || ttl > 40*time.Minute || ttl < 39*time.Minute {
		t.Fatalf("PTTL %s = %v, %v; want ≈ 40m, two intervals of 20m", key, ttl, err)
	}
	l.Refund(ctx, "alice")
	l.Refund(ctx, "alice")
	if n, err := c.Exists(ctx, key).Result(); err != nil || n != 0 {
		t.Fatalf("%s exists (%d, %v) after the bucket was refunded full", key, n, err)
	}
}

// The bucket refills at its rate, on Redis's clock.
func TestRedisRefills(t *testing.T) {
	c, prefix := sharedRedis(t)
	l := NewRedis(c, prefix, nil).Limiter(Rule{Name: "fast", Every: 50 * time.Millisecond, Burst: 1})
	mustAllow(t, l, "alice")
	wait := mustRefuse(t, l, "alice")
	if wait > 50*time.Millisecond {
		t.Fatalf("retry after %v, want at most the interval, 50ms", wait)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if ok, _ := l.Allow(context.Background(), "alice"); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no token back within 5s of a 50ms interval")
		}
		time.Sleep(10 * time.Millisecond) // a poll: the refill is Redis's clock
	}
}

// toggleProxy forwards TCP to target while up; while down it hangs up on
// every connection, as a Redis that is gone would.
type toggleProxy struct {
	ln     net.Listener
	target string
	up     atomic.Bool
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

func startProxy(t *testing.T, target string) *toggleProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &toggleProxy{ln: ln, target: target}
	p.wg.Go(p.serve)
	t.Cleanup(p.close)
	return p
}

func (p *toggleProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.up.Load() {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Go(func() { io.Copy(s, c); s.Close() })
		p.wg.Go(func() { io.Copy(c, s); c.Close() })
	}
}

func (p *toggleProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// records counts log records by level.
type records struct {
	mu     sync.Mutex
	levels map[slog.Level]int
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }

func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.levels[rec.Level]++
	return nil
}

func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

func (r *records) count(l slog.Level) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.levels[l]
}

// Without Redis every limit allows, the outage is logged once, and Redis
// is asked at most once per skip interval; once it answers, the limits
// hold again and that is logged once.
func TestRedisFailsOpenAndLogsOnce(t *testing.T) {
	c, prefix := sharedRedis(t)
	proxy := startProxy(t, c.Options().Addr)
	log := &records{levels: map[slog.Level]int{}}
	r, err := OpenRedis("redis://"+proxy.ln.Addr().String()+"/0", prefix, slog.New(log))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	l := r.Limiter(PerWindow("messages", 1, time.Hour))

	start := time.Now()
	for range 100 {
		mustAllow(t, l, "alice")
	}
	if d := time.Since(start); d > 2*opTimeout {
		t.Errorf("100 calls took %v while Redis was down: each asked it", d)
	}
	if n := log.count(slog.LevelWarn); n != 1 {
		t.Errorf("%d warnings while Redis was down, want 1", n)
	}

	proxy.up.Store(true)
	r.skipUntil.Store(0) // as if the skip interval had passed
	mustAllow(t, l, "alice")
	mustRefuse(t, l, "alice")
	mustRefuse(t, l, "alice")
	if n, w := log.count(slog.LevelInfo), log.count(slog.LevelWarn); n != 1 || w != 1 {
		t.Errorf("%d infos and %d warnings after Redis came back, want 1 and 1", n, w)
	}
}
