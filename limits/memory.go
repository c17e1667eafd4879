package limits

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Memory keeps the buckets in this process: the limits of one instance.
type Memory struct {
	// Now is the clock; nil is time.Now. Tests move it instead of
	// sleeping.
	Now func() time.Time
	// MaxKeys bounds the buckets one limiter remembers; 0 is
	// DefaultMaxKeys.
	MaxKeys int
}

// DefaultMaxKeys bounds a limiter's memory: a bucket is ≈ 200 bytes, so
// 100,000 of them take ≈ 20 MB.
const DefaultMaxKeys = 100_000

// shards splits a limiter's buckets so that requests for different keys
// rarely wait for each other's lock.
const shards = 32

// Limiter returns a limiter for r whose buckets live in this process. A
// bucket untouched for long enough to be full again is forgotten, which
// changes nothing; past MaxKeys the least recently used bucket is
// forgotten even if it was not full, which gives that key a full bucket
// again: an attacker would need MaxKeys keys (users, addresses) active at
// once to buy a refill that way.
func (m Memory) Limiter(r Rule) Limiter {
	maxKeys := m.MaxKeys
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	l := &memory{
		rule:     r,
		limit:    rate.Every(r.Every),
		idle:     r.idle(),
		now:      m.Now,
		perShard: max(maxKeys/shards, 1),
		seed:     maphash.MakeSeed(),
	}
	if l.now == nil {
		l.now = time.Now
	}
	for i := range l.shards {
		l.shards[i].init()
	}
	return l
}

type memory struct {
	rule     Rule
	limit    rate.Limit
	idle     time.Duration
	now      func() time.Time
	perShard int
	seed     maphash.Seed
	shards   [shards]shard
}

// shard is a map of buckets and a list of them from the most to the least
// recently used, so that the ones to forget are always at the back.
type shard struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	lru     bucket // sentinel: lru.next is the most recent, lru.prev the least
}

type bucket struct {
	key        string
	lim        *rate.Limiter
	used       time.Time
	prev, next *bucket
}

func (s *shard) init() {
	s.buckets = make(map[string]*bucket)
	s.lru.prev, s.lru.next = &s.lru, &s.lru
}

func (l *memory) shard(key string) *shard {
	return &l.shards[maphash.String(l.seed, key)%shards]
}

// Allow takes a token from key's bucket (see Limiter).
func (l *memory) Allow(_ context.Context, key string) (bool, time.Duration) {
	now := l.now()
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[key]
	if b == nil {
		b = l.add(s, key, now)
	} else {
		s.touch(b, now)
	}
	if b.lim.AllowN(now, 1) {
		return true, 0
	}
	wait := time.Duration((1 - b.lim.TokensAt(now)) * float64(l.rule.Every))
	return false, max(wait, time.Nanosecond)
}

// Refund gives a token back (see Limiter). A forgotten bucket is full and
// stays so.
func (l *memory) Refund(_ context.Context, key string) {
	now := l.now()
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if b := s.buckets[key]; b != nil {
		// Taking -1 tokens adds one; the limiter caps the bucket at its
		// burst when it next counts (TestRefundNeverOverfills pins it).
		b.lim.AllowN(now, -1)
	}
}

// add makes a full bucket for key, first forgetting the buckets that are
// full again and, past the bound, the least recently used one.
func (l *memory) add(s *shard, key string, now time.Time) *bucket {
	for last := s.lru.prev; last != &s.lru && (now.Sub(last.used) >= l.idle || len(s.buckets) >= l.perShard); last = s.lru.prev {
		s.unlink(last)
		delete(s.buckets, last.key)
	}
	b := &bucket{key: key, lim: rate.NewLimiter(l.limit, l.rule.Burst)}
	s.buckets[key] = b
	s.touch(b, now)
	return b
}

// touch moves b to the front of the list.
func (s *shard) touch(b *bucket, now time.Time) {
	b.used = now
	if s.lru.next == b {
		return
	}
	if b.next != nil {
		s.unlink(b)
	}
	b.prev, b.next = &s.lru, s.lru.next
	s.lru.next.prev = b
	s.lru.next = b
}

func (s *shard) unlink(b *bucket) {
	b.prev.next, b.next.prev = b.next, b.prev
	b.prev, b.next = nil, nil
}

// size counts the buckets remembered, for tests.
func (l *memory) size() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.buckets)
		s.mu.Unlock()
	}
	return n
}
