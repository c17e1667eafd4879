package limits

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis keeps the buckets in Redis, so that every instance sharing it
// counts against the same budget: a user posting through two instances
// gets the rate once, not twice.
//
// One bucket is one key, prefix + "limit:" + rule + ":" + key, holding its
// theoretical arrival time (GCRA) and expiring when the bucket is full
// again; gcraScript reads and moves it in one round trip. Time is Redis's,
// so that the instances' clocks need not agree.
//
// Redis is not worth an outage: when it does not answer within opTimeout,
// every limit allows (fails open) for the next second without asking it,
// and the outage is logged once, when it starts, and once when it ends.
type Redis struct {
	client *redis.Client
	prefix string
	log    *slog.Logger
	own    bool // Close closes client

	failing   atomic.Bool
	skipUntil atomic.Int64 // unix ns: until then, allow without asking
}

// opTimeout bounds one round trip: the write path waits for it.
const opTimeout = 250 * time.Millisecond

// skipFor is how long the limits stay open after Redis failed to answer,
// so that a Redis that hangs costs a request opTimeout once a second, not
// every request.
const skipFor = time.Second

// OpenRedis connects to url (redis://HOST:PORT/N) with a client of its own.
// It does not wait for Redis: until Redis answers, the limits allow.
func OpenRedis(url, prefix string, log *slog.Logger) (*Redis, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("limits: redis url: %w", err)
	}
	opt.ContextTimeoutEnabled = true
	opt.DialTimeout = opTimeout
	opt.DialerRetries = 1
	r := NewRedis(redis.NewClient(opt), prefix, log)
	r.own = true
	return r, nil
}

// NewRedis keeps the buckets under prefix in the Redis of client, which
// the caller closes.
func NewRedis(client *redis.Client, prefix string, log *slog.Logger) *Redis {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Redis{client: client, prefix: prefix + "limit:", log: log}
}

// Close closes the client OpenRedis made.
func (r *Redis) Close() error {
	if !r.own {
		return nil
	}
	return r.client.Close()
}

// Limiter returns a limiter for rule whose buckets are in Redis.
func (r *Redis) Limiter(rule Rule) Limiter {
	return &redisLimiter{
		r:      r,
		prefix: r.prefix + rule.Name + ":",
		every:  strconv.FormatInt(max(rule.Every.Microseconds(), 1), 10),
		burst:  strconv.Itoa(rule.Burst),
	}
}

type redisLimiter struct {
	r                    *Redis
	prefix, every, burst string
}

// Allow takes a token (see Limiter).
func (l *redisLimiter) Allow(ctx context.Context, key string) (bool, time.Duration) {
	wait, err := l.r.run(ctx, l.prefix+key, l.every, l.burst, "take")
	if err != nil || wait <= 0 {
		return true, 0
	}
	return false, time.Duration(wait) * time.Microsecond
}

// Refund gives a token back (see Limiter).
func (l *redisLimiter) Refund(ctx context.Context, key string) {
	_, _ = l.r.run(ctx, l.prefix+key, l.every, l.burst, "refund")
}

// errSkipped says the call was not made: Redis failed a moment ago.
var errSkipped = errors.New("limits: redis failed a moment ago")

func (r *Redis) run(ctx context.Context, key, every, burst, op string) (int64, error) {
	if until := r.skipUntil.Load(); until != 0 && time.Now().UnixNano() < until {
		return 0, errSkipped
	}
	cctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	wait, err := gcraScript.Run(cctx, r.client, []string{key}, every, burst, op).Int64()
	switch {
	case err != nil && ctx.Err() != nil:
		// The request ended (the client left): not Redis's fault.
	case err != nil:
		r.skipUntil.Store(time.Now().Add(skipFor).UnixNano())
		if !r.failing.Swap(true) {
			r.log.Warn("limits: redis unreachable: every limit allows until it answers again", "err", err)
		}
	case r.failing.Load() && r.failing.Swap(false):
		r.skipUntil.Store(0)
		r.log.Info("limits: redis answers again: the limits hold again")
	}
	return wait, err
}

// gcraScript moves the bucket KEYS[1]: ARGV[1] is the µs between tokens
// (T), ARGV[2] the burst (B), ARGV[3] "take" or "refund". The key holds the
// theoretical arrival time (TAT, µs of Redis's clock): the bucket is full
// when TAT <= now, and a take is allowed while the TAT it leaves is at
// most B·T ahead of now. It returns 0 for a take allowed (or a refund),
// else the µs until one would be. The key expires when the bucket is full
// again, so idle keys cost nothing.
//
// The TAT is written with %.0f: Lua's tostring would round it to 14
// digits, and µs since 1970 have 16.
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local every = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
if tat < now then tat = now end
if ARGV[3] == 'refund' then
  tat = tat - every
else
  local wait = tat + every - tonumber(ARGV[2]) * every - now
  if wait > 0 then return wait end
  tat = tat + every
end
if tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
end
return 0
`)
