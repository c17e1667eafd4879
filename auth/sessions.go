package auth

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ssechat/ssechat/chat"
	"github.com/ssechat/ssechat/internal/periodic"
)

// Session lifetime. Expiry slides: a session lives the TTL after its last
// recorded use, so a user who comes back now and then is never logged out,
// and a token left behind stops working a TTL after its last use. Use is
// recorded at most once an hour per session (touchEvery), which keeps the
// cost of sliding to one write an hour per session in use instead of one
// per request; a session therefore expires between TTL−1h and TTL after
// its very last request. Each recorded use sets the cookie again with
// Max-Age = TTL, so the cookie and the server agree on when it ends.
const (
	// DefaultSessionTTL is the lifetime of an unused session (--session-ttl).
	DefaultSessionTTL = 30 * 24 * time.Hour
	touchEvery        = time.Hour
	// PruneEvery is how often KeepSessions deletes expired sessions.
	PruneEvery = time.Minute
	// pruneBatch bounds one pruning statement, so that it never holds
	// SQLite's one write connection for long.
	pruneBatch = 500
)

// Option tunes a Service.
type Option func(*Service)

// WithSessionTTL sets how long a session lives after its last recorded
// use; zero or less keeps DefaultSessionTTL.
func WithSessionTTL(d time.Duration) Option {
	return func(s *Service) {
		if d > 0 {
			s.ttl = d
		}
	}
}

// WithClock sets the clock that sessions are timed by (nil keeps
// time.Now): tests move it.
func WithClock(now func() time.Time) Option {
	return func(s *Service) {
		if now != nil {
			s.now = now
		}
	}
}

// SessionTTL is how long a session lives unused: the Max-Age of its
// cookie.
func (s *Service) SessionTTL() time.Duration { return s.ttl }

// cachedSession is what the cache holds for a session: its user, and the
// last use recorded in the store as far as this instance knows (Unix ms).
// The store's own record is never older, since every instance only moves
// it forward, so a session this says is alive is alive in the store too.
type cachedSession struct {
	user     string
	lastUsed atomic.Int64
}

// expired reports whether a session last used at lastUsedMS has expired
// by now. It agrees with PruneSessions, which deletes what is used before
// now−TTL.
func (s *Service) expired(lastUsedMS int64, now time.Time) bool {
	return lastUsedMS < now.Add(-s.ttl).UnixMilli()
}

func errExpired() error {
	return chat.Errorf(chat.EUNAUTHORIZED, "session expired: log in again")
}

// touch records the use at now when the last recorded one is touchEvery
// old, and reports whether it did: the session's expiry moved, so its
// cookie should be set again. Of concurrent requests only one writes. A
// failed write does not fail the request (the session is valid); the next
// use tries again.
func (s *Service) touch(ctx context.Context, key []byte, cs *cachedSession, now time.Time) bool {
	last, nowMS := cs.lastUsed.Load(), now.UnixMilli()
	if nowMS-last < touchEvery.Milliseconds() || !cs.lastUsed.CompareAndSwap(last, nowMS) {
		return false
	}
	if err := s.store.TouchSession(ctx, key, now); err != nil {
		cs.lastUsed.CompareAndSwap(nowMS, last)
		return false
	}
	return true
}

// remember caches cs under key unless a session was forgotten since epoch,
// which was read before the store read that produced cs: that session may
// be this one, and a logout must not be undone by a read that began before
// it. The check and the store hold forgetMu, as forgetting does: checking
// without it, a logout could forget the key between the check and the
// store, and the entry would answer for the ended session (for a moment
// or, without a second check, for good). Only cache misses and logouts
// take the lock; hits never do.
func (s *Service) remember(key string, cs *cachedSession, epoch uint64) {
	s.forgetMu.Lock()
	defer s.forgetMu.Unlock()
	if s.epoch.Load() != epoch {
		return
	}
	if _, loaded := s.sessions.LoadOrStore(key, cs); loaded {
		return
	}
	if s.cached.Add(1) > s.maxCached {
		s.sessions.Clear()
		s.cached.Store(0)
	}
}

// LogoutAll ends every session of user (the registered spelling), on
// every instance, with their open streams.
func (s *Service) LogoutAll(ctx context.Context, user string) error {
	keys, err := s.store.DeleteUserSessions(ctx, user)
	if err != nil {
		return fmt.Errorf("logout %s everywhere: %w", user, err)
	}
	s.ended(ctx, keys)
	return nil
}

// ended forgets the deleted sessions here and tells every instance, which
// closes their streams.
func (s *Service) ended(ctx context.Context, keys [][]byte) {
	for _, key := range keys {
		s.forget(string(key))
		// Best effort, as in Logout.
		_ = s.ender.EndSession(ctx, hex.EncodeToString(key))
	}
}

// PruneSessions deletes the sessions that have expired, in batches, and
// ends each on every instance (a stream opened before its session expired
// closes now). It returns how many it deleted.
func (s *Service) PruneSessions(ctx context.Context) (int, error) {
	before := s.now().Add(-s.ttl)
	total := 0
	for {
		keys, err := s.store.PruneSessions(ctx, before, pruneBatch)
		total += len(keys)
		s.ended(ctx, keys)
		if err != nil {
			return total, fmt.Errorf("prune sessions: %w", err)
		}
		if len(keys) < pruneBatch {
			return total, nil
		}
	}
}

// KeepSessions prunes expired sessions now and then every interval
// (PruneEvery if zero) in a goroutine, until the returned stop is called;
// stop waits for a prune in progress and may be called twice. A failed
// prune is logged and retried at the next tick: expired sessions are
// refused whether or not they were pruned.
func (s *Service) KeepSessions(ctx context.Context, interval time.Duration, log *slog.Logger) (stop func()) {
	if interval <= 0 {
		interval = PruneEvery
	}
	return periodic.Every(ctx, interval, func(ctx context.Context) {
		n, err := s.PruneSessions(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("prune sessions", "err", err)
		case n > 0:
			log.Info("pruned expired sessions", "sessions", n)
		}
	})
}
