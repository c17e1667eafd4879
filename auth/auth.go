// Package auth registers accounts, checks passwords and keeps sessions.
package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/ssechat/ssechat/chat"
)

// Store keeps accounts and sessions durably. Sessions are stored under the
// SHA-256 of their token, so a copy of the database opens no session.
type Store interface {
	CreateUser(ctx context.Context, name string, passwordHash []byte) error
	// User matches name case-insensitively and returns its registered spelling.
	User(ctx context.Context, name string) (canonical string, passwordHash []byte, err error)
	// CreateSession stores a session, opened and last used at now.
	CreateSession(ctx context.Context, tokenHash []byte, username string, now time.Time) error
	// Session reads a session back, or chat.EUNAUTHORIZED; expiry is
	// judged here, from its LastUsed.
	Session(ctx context.Context, tokenHash []byte) (chat.Session, error)
	// TouchSession records a use at at; it never moves the last use back
	// nor brings a deleted session back.
	TouchSession(ctx context.Context, tokenHash []byte, at time.Time) error
	DeleteSession(ctx context.Context, tokenHash []byte) error
	// DeleteUserSessions deletes every session of user and returns their
	// token hashes.
	DeleteUserSessions(ctx context.Context, user string) ([][]byte, error)
	// PruneSessions deletes at most limit sessions last used before before
	// and returns their token hashes.
	PruneSessions(ctx context.Context, before time.Time, limit int) ([][]byte, error)
}

// Ender tells every instance that a session ended, this one included
// (see cluster.Listener.SessionEnded, which calls Forget).
type Ender interface {
	EndSession(ctx context.Context, key string) error
}

// Service logs users in and out. The first login of a free username
// registers it; later logins need the same password.
type Service struct {
	store Store
	ender Ender
	cost  int
	// epoch counts sessions forgotten: a store read that began before a
	// logout may not put the session back into the cache after it.
	// Forgetting and caching a read hold forgetMu (see remember).
	epoch    atomic.Uint64
	forgetMu sync.Mutex
	// sessions caches token hash → *cachedSession: every request
	// authenticates, and the cache spares the database that read. Logout
	// evicts; an entry that looks expired is read again. A token
	// never logged out would stay for the life of the process, so a cache
	// that reaches maxCached is emptied and refills from the store: one
	// indexed read per session still in use, and no bookkeeping per hit.
	sessions  sync.Map
	cached    atomic.Int64
	maxCached int64
	ttl       time.Duration    // a session lives this long after its last recorded use
	now       func() time.Time // the clock sessions are timed by
	hashing   chan struct{}    // bcrypt's slots (hashing.go)
}

// maxCachedSessions bounds the session cache (≈ 200 bytes an entry).
const maxCachedSessions = 100_000

// New returns a Service hashing passwords with bcrypt at cost; ender
// spreads logouts to the other instances. Sessions live DefaultSessionTTL
// after their last use unless an option says otherwise.
func New(store Store, ender Ender, cost int, opts ...Option) *Service {
	s := &Service{store: store, ender: ender, cost: cost, maxCached: maxCachedSessions,
		ttl: DefaultSessionTTL, now: time.Now, hashing: newHashSlots()}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Login checks or registers the account and opens a session; it returns
// the session token and the username as first registered.
func (s *Service) Login(ctx context.Context, name, password string) (token, username string, err error) {
	if !chat.ValidUsername(name) {
		return "", "", chat.Errorf(chat.EINVALID, "username must be 1-%d of A-Z a-z 0-9 _ -", chat.MaxUsernameLen)
	}
	if password == "" || len(password) > chat.MaxPasswordLen {
		return "", "", chat.Errorf(chat.EINVALID, "password must be 1-%d bytes", chat.MaxPasswordLen)
	}
	username, err = s.checkOrRegister(ctx, name, password)
	if err != nil {
		return "", "", err
	}
	token = uuid.NewString()
	if err := s.store.CreateSession(ctx, hashToken(token), username, s.now()); err != nil {
		return "", "", fmt.Errorf("login %s: %w", username, err)
	}
	return token, username, nil
}

func (s *Service) checkOrRegister(ctx context.Context, name, password string) (string, error) {
	canonical, hash, err := s.store.User(ctx, name)
	if chat.ErrorCode(err) == chat.ENOTFOUND {
		registered, rerr := s.register(ctx, name, password)
		if chat.ErrorCode(rerr) != chat.ECONFLICT {
			return registered, rerr
		}
		// Someone registered the name meanwhile: check against theirs.
		canonical, hash, err = s.store.User(ctx, name)
	}
	if err != nil {
		return "", fmt.Errorf("login %s: %w", name, err)
	}
	match, err := s.checkPassword(ctx, hash, password)
	if err != nil {
		return "", err
	}
	if !match {
		return "", chat.Errorf(chat.EUNAUTHORIZED, "wrong password for %q", canonical)
	}
	return canonical, nil
}

func (s *Service) register(ctx context.Context, name, password string) (string, error) {
	hash, err := s.hashPassword(ctx, password)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	if err := s.store.CreateUser(ctx, name, hash); err != nil {
		return "", err
	}
	return name, nil
}

// Authenticate returns the user of a session token, or chat.EUNAUTHORIZED
// for a token that is unknown, logged out or expired. renewed reports
// that this call recorded a use, which moved the session's expiry (see
// DefaultSessionTTL): a cookie carrying the token should be set again.
func (s *Service) Authenticate(ctx context.Context, token string) (user string, renewed bool, err error) {
	if token == "" {
		return "", false, chat.Errorf(chat.EUNAUTHORIZED, "login required")
	}
	key := hashToken(token)
	now := s.now()
	if v, ok := s.sessions.Load(string(key)); ok {
		cs := v.(*cachedSession)
		if !s.expired(cs.lastUsed.Load(), now) {
			return cs.user, s.touch(ctx, key, cs, now), nil
		}
		// Expired as far as this instance knows; another one may have
		// recorded a use since: ask the store.
		if s.sessions.CompareAndDelete(string(key), cs) {
			s.cached.Add(-1)
		}
	}
	epoch := s.epoch.Load()
	sess, err := s.store.Session(ctx, key)
	if err != nil {
		return "", false, err
	}
	if s.expired(sess.LastUsed.UnixMilli(), now) {
		return "", false, errExpired()
	}
	cs := &cachedSession{user: sess.User}
	cs.lastUsed.Store(sess.LastUsed.UnixMilli())
	renewed = s.touch(ctx, key, cs, now)
	s.remember(string(key), cs, epoch)
	return sess.User, renewed, nil
}

// SessionKey names the session of token without revealing it: the hex
// SHA-256 under which the store keeps it.
func (s *Service) SessionKey(token string) string { return hex.EncodeToString(hashToken(token)) }

// Logout ends the session of token, on every instance.
func (s *Service) Logout(ctx context.Context, token string) error {
	key := hashToken(token)
	if err := s.store.DeleteSession(ctx, key); err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	s.forget(string(key))
	// Best effort: an instance that misses the notice lost its connection
	// to the others, and forgets every cached session when it is back.
	_ = s.ender.EndSession(ctx, hex.EncodeToString(key))
	return nil
}

// Forget drops the session named by key from the cache: it ended on some
// instance.
func (s *Service) Forget(key string) {
	raw, err := hex.DecodeString(key)
	if err != nil {
		return
	}
	s.forget(string(raw))
}

func (s *Service) forget(key string) {
	s.forgetMu.Lock()
	defer s.forgetMu.Unlock()
	s.epoch.Add(1)
	if _, cached := s.sessions.LoadAndDelete(key); cached {
		s.cached.Add(-1)
	}
}

// ForgetAll empties the cache: sessions may have ended unheard of.
func (s *Service) ForgetAll() {
	s.forgetMu.Lock()
	defer s.forgetMu.Unlock()
	s.epoch.Add(1)
	s.sessions.Clear()
	s.cached.Store(0)
}

// Valid reports whether the session named by key still exists and has not
// expired.
func (s *Service) Valid(ctx context.Context, key string) (bool, error) {
	raw, err := hex.DecodeString(key)
	if err != nil {
		return false, nil
	}
	sess, err := s.store.Session(ctx, raw)
	switch chat.ErrorCode(err) {
	case "":
		return !s.expired(sess.LastUsed.UnixMilli(), s.now()), nil
	case chat.EUNAUTHORIZED:
		return false, nil
	}
	return false, err
}

// Canonical returns the registered spelling of a username, or
// chat.ENOTFOUND.
func (s *Service) Canonical(ctx context.Context, name string) (string, error) {
	if !chat.ValidUsername(name) {
		return "", chat.Errorf(chat.EINVALID, "invalid username %q", name)
	}
	canonical, _, err := s.store.User(ctx, name)
	if err != nil {
		return "", err
	}
	return canonical, nil
}

func hashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}
