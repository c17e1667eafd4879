package limits

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"
)

// clock is a test clock that moves only when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func mustAllow(t *testing.T, l Limiter, key string) {
	t.Helper()
	if ok, wait := l.Allow(context.Background(), key); !ok {
		t.Fatalf("%s refused (retry after %v), want allowed", key, wait)
	}
}

func mustRefuse(t *testing.T, l Limiter, key string) time.Duration {
	t.Helper()
	ok, wait := l.Allow(context.Background(), key)
	if ok {
		t.Fatalf("%s allowed, want refused", key)
	}
	if wait <= 0 {
		t.Fatalf("%s refused with retry after %v, want more than 0", key, wait)
	}
	return wait
}

// conformance is what every backend must do; newBackend gives a fresh,
// empty backend each call. It needs no clock: nothing here waits for a
// refill (the rules refill once an hour).
func conformance(t *testing.T, newBackend func(t *testing.T) Backend) {
	ctx := context.Background()
	t.Run("BurstThenRefusal", func(t *testing.T) {
		l := newBackend(t).Limiter(PerWindow("burst", 3, time.Hour))
		for range 3 {
			mustAllow(t, l, "alice")
		}
		wait := mustRefuse(t, l, "alice")
		if wait > 20*time.Minute || wait < 19*time.Minute {
			t.Errorf("retry after %v, want ≈ 20m (an hour / 3)", wait)
		}
		mustRefuse(t, l, "alice") // a refusal takes nothing, and gives nothing
	})
	t.Run("KeysAreIndependent", func(t *testing.T) {
		l := newBackend(t).Limiter(PerWindow("keys", 1, time.Hour))
		mustAllow(t, l, "alice")
		mustRefuse(t, l, "alice")
		mustAllow(t, l, "bob")
		mustAllow(t, l, "2001:db8::/64")
	})
	t.Run("RulesAreIndependent", func(t *testing.T) {
		b := newBackend(t)
		a, c := b.Limiter(PerWindow("rule-a", 1, time.Hour)), b.Limiter(PerWindow("rule-c", 1, time.Hour))
		mustAllow(t, a, "alice")
		mustRefuse(t, a, "alice")
		mustAllow(t, c, "alice")
	})
	t.Run("SameRuleSharesBuckets", func(t *testing.T) {
		b := newBackend(t)
		r := PerWindow("shared", 2, time.Hour)
		one, two := b.Limiter(r), b.Limiter(r)
		if _, ok := b.(Memory); ok {
			t.Skip("Memory's limiters are separate: one per rule and process")
		}
		mustAllow(t, one, "alice")
		mustAllow(t, two, "alice")
		mustRefuse(t, one, "alice")
		mustRefuse(t, two, "alice")
	})
	t.Run("RefundGivesOneBack", func(t *testing.T) {
		l := newBackend(t).Limiter(PerWindow("refund", 2, time.Hour))
		mustAllow(t, l, "alice")
		mustAllow(t, l, "alice")
		mustRefuse(t, l, "alice")
		l.Refund(ctx, "alice")
		mustAllow(t, l, "alice")
		mustRefuse(t, l, "alice")
	})
	t.Run("RefundNeverOverfills", func(t *testing.T) {
		l := newBackend(t).Limiter(PerWindow("overfill", 2, time.Hour))
		for range 5 {
			l.Refund(ctx, "alice") // a full bucket, and a missing one
		}
		mustAllow(t, l, "alice")
		l.Refund(ctx, "alice")
		l.Refund(ctx, "alice")
		mustAllow(t, l, "alice")
		mustAllow(t, l, "alice")
		mustRefuse(t, l, "alice")
	})
	t.Run("Concurrent", func(t *testing.T) {
		// 8 goroutines take from one bucket of 50: exactly 50 succeed.
		l := newBackend(t).Limiter(PerWindow("concurrent", 50, time.Hour))
		var mu sync.Mutex
		allowed := 0
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 20 {
					if ok, _ := l.Allow(ctx, "alice"); ok {
						mu.Lock()
						allowed++
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		if allowed != 50 {
			t.Errorf("%d of 160 allowed from a bucket of 50", allowed)
		}
	})
}

// drain takes what is left in key's bucket, at most n tokens.
func drain(t *testing.T, l Limiter, key string, n int) {
	t.Helper()
	for range n {
		if ok, _ := l.Allow(context.Background(), key); !ok {
			return
		}
	}
	t.Fatalf("%s: %d more tokens than the burst allows", key, n)
}

func TestMemoryConformance(t *testing.T) {
	conformance(t, func(*testing.T) Backend { return Memory{} })
}

// A bucket refills at its rate, and Retry-After says exactly when: a
// client that waits what it was told is let in.
func TestMemoryRefillMatchesRetryAfter(t *testing.T) {
	for _, r := range []Rule{
		Defaults().Messages(),
		Defaults().FailedLoginsName(),
		Defaults().FailedLoginsIP(),
		Defaults().Registrations(),
		Defaults().Rooms(),
		{Name: "odd", Every: time.Second / 3, Burst: 1},
	} {
		t.Run(r.Name, func(t *testing.T) {
			c := newClock()
			l := Memory{Now: c.Now}.Limiter(r)
			for range r.Burst {
				mustAllow(t, l, "k")
			}
			wait := mustRefuse(t, l, "k")
			if Seconds(wait) != Seconds(r.Every) {
				t.Errorf("Retry-After %d s (%v), want %d s, the rule's interval %v", Seconds(wait), wait, Seconds(r.Every), r.Every)
			}
			c.Advance(time.Duration(Seconds(wait)) * time.Second)
			mustAllow(t, l, "k")
			drain(t, l, "k", r.Burst)
			// Idle for a whole burst's worth of intervals: full again.
			c.Advance(r.idle())
			for range r.Burst {
				mustAllow(t, l, "k")
			}
			mustRefuse(t, l, "k")
		})
	}
}

// Buckets that are full again are forgotten as new keys come, and the
// number remembered never passes the bound.
func TestMemoryForgetsIdleBucketsAndStaysBounded(t *testing.T) {
	c := newClock()
	m := Memory{Now: c.Now, MaxKeys: 64 * shards}
	l := m.Limiter(Rule{Name: "idle", Every: time.Second, Burst: 2}).(*memory)
	for i := range 1000 {
		mustAllow(t, l, fmt.Sprint("old", i))
	}
	if n := l.size(); n > 64*shards || n < 600 {
		t.Fatalf("%d buckets remembered after 1000 keys, want most of them, at most %d", n, 64*shards)
	}
	c.Advance(2 * time.Second) // every bucket is full again
	// A shard forgets when a key is added to it: enough keys reach them all.
	for i := range 1000 {
		mustAllow(t, l, fmt.Sprint("new", i))
	}
	if n := l.size(); n != 1000 {
		t.Errorf("%d buckets remembered, want the 1000 new ones", n)
	}
	// A bucket still in debt is kept while there is room, and its debt
	// with it.
	l.Allow(context.Background(), "new0")
	mustRefuse(t, l, "new0")

	// Past the bound, the least recently used go first.
	for i := range 100_000 {
		l.Allow(context.Background(), fmt.Sprint("flood", i))
	}
	if n := l.size(); n > 64*shards {
		t.Errorf("%d buckets remembered, want at most %d", n, 64*shards)
	}
}

func TestSeconds(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want int
	}{
		{time.Nanosecond, 1},
		{time.Second, 1},
		{time.Second + 500*time.Microsecond, 1}, // float slack
		{time.Second + 2*time.Millisecond, 2},
		{1500 * time.Millisecond, 2},
		{90 * time.Second, 90},
		{-time.Second, 1},
	} {
		if got := Seconds(c.d); got != c.want {
			t.Errorf("Seconds(%v) = %d, want %d", c.d, got, c.want)
		}
	}
}

func TestConfigRules(t *testing.T) {
	d := Defaults()
	if r := d.Messages(); r.Every != 100*time.Millisecond || r.Burst != 20 {
		t.Errorf("default messages %+v, want 20 at once then one per 100ms", r)
	}
	if r := d.FailedLoginsName(); r.Every != 90*time.Second || r.Burst != 10 {
		t.Errorf("default failed logins per name %+v, want 10 per 15 minutes", r)
	}
	if d.Streams() != 16 {
		t.Errorf("default streams %d, want 16", d.Streams())
	}
	off := d
	off.Off = true
	for name, c := range map[string]Config{"zero": {}, "off": off} {
		for _, r := range []Rule{c.Messages(), c.FailedLoginsName(), c.FailedLoginsIP(), c.Registrations(), c.Rooms()} {
			if !r.Off() {
				t.Errorf("%s config: rule %+v is on", name, r)
			}
		}
		if c.Streams() != 0 {
			t.Errorf("%s config: stream cap %d", name, c.Streams())
		}
	}
	if r := (Config{MessageRate: 5}).Messages(); r.Burst != 1 || r.Off() {
		t.Errorf("a rate without a burst: %+v, want a burst of 1", r)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := Defaults().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero: %v", err)
	}
	for _, c := range []Config{
		{MessageRate: -1},
		{MessageRate: math.NaN()},
		{MessageRate: math.Inf(1)},
		{MessageRate: 1e-9},
		{MessageBurst: -1},
		{FailedLoginsPerName: -1},
		{FailedLoginsPerIP: -1},
		{RegistrationsPerIP: -1},
		{RoomsPerUser: -1},
		{StreamsPerUser: -1},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: valid, want an error", c)
		}
		if r := c.Messages(); !r.Off() && c.MessageRate != 0 {
			t.Errorf("%+v: messages rule %+v is on", c, r)
		}
	}
}
