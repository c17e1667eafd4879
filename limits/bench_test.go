package limits

import (
	"context"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// always is a rule that never refuses in a benchmark: the cost measured is
// the allowed path, the one every accepted message takes.
var always = Rule{Name: "bench", Every: time.Microsecond, Burst: 1 << 30}

// One user posting: the write path's cost per message.
func BenchmarkMemoryAllow(b *testing.B) {
	l := Memory{}.Limiter(always)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l.Allow(ctx, "alice")
	}
}

// 10,000 users posting at once from every core.
func BenchmarkMemoryAllowParallel(b *testing.B) {
	l := Memory{}.Limiter(always)
	keys := make([]string, 10_000)
	for i := range keys {
		keys[i] = "user" + strconv.Itoa(i)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.Allow(ctx, keys[i%len(keys)])
			i += 7
		}
	})
}

// The defaults' message rule refusing a user who posts too fast.
func BenchmarkMemoryRefuse(b *testing.B) {
	l := Memory{}.Limiter(Defaults().Messages())
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l.Allow(ctx, "alice")
	}
}

// One round trip to Redis per message, the cost with --redis.
func BenchmarkRedisAllow(b *testing.B) {
	c, prefix := sharedRedis(b)
	l := NewRedis(c, prefix, nil).Limiter(always)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := l.Allow(ctx, "alice"); !ok {
			b.Fatal("refused")
		}
	}
}

func BenchmarkRedisAllowParallel(b *testing.B) {
	c, prefix := sharedRedis(b)
	l := NewRedis(c, prefix, nil).Limiter(always)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.Allow(ctx, "user"+strconv.Itoa(i%1000))
			i++
		}
	})
}
