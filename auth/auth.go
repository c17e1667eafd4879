// Package auth registers accounts, checks passwords and keeps sessions.
package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/ssechat/ssechat/chat"
)

// Store keeps accounts and sessions durably. Sessions are stored under the
// SHA-256 of their token, so a copy of the database opens no session.
type Store interface {
	CreateUser(ctx context.Context, name string, passwordHash []byte) error
	// User matches name case-insensitively and returns its registered spelling.
	User(ctx context.Context, name string) (canonical string, passwordHash []byte, err error)
	CreateSession(ctx context.Context, tokenHash []byte, username string) error
	SessionUser(ctx context.Context, tokenHash []byte) (string, error)
	DeleteSession(ctx context.Context, tokenHash []byte) error
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
	epoch atomic.Uint64
	// sessions caches token hash → user: every request authenticates, and
	// the cache spares the database that read. Logout evicts. A token
	// never logged out would stay for the life of the process, so a cache
	// that reaches maxCached is emptied and refills from the store: one
	// indexed read per session still in use, and no bookkeeping per hit.
	sessions  sync.Map
	cached    atomic.Int64
	maxCached int64
}

// maxCachedSessions bounds the session cache (≈ 200 bytes an entry).
const maxCachedSessions = 100_000

// New returns a Service hashing passwords with bcrypt at cost; ender
// spreads logouts to the other instances.
func New(store Store, ender Ender, cost int) *Service {
	return &Service{store: store, ender: ender, cost: cost, maxCached: maxCachedSessions}
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
	if err := s.store.CreateSession(ctx, hashToken(token), username); err != nil {
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
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return "", chat.Errorf(chat.EUNAUTHORIZED, "wrong password for %q", canonical)
	}
	return canonical, nil
}

func (s *Service) register(ctx context.Context, name, password string) (string, error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), s.cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	if err := s.store.CreateUser(ctx, name, hash); err != nil {
		return "", err
	}
	return name, nil
}

// Authenticate returns the user of a session token, or chat.EUNAUTHORIZED.
func (s *Service) Authenticate(ctx context.Context, token string) (string, error) {
	if token == "" {
		return "", chat.Errorf(chat.EUNAUTHORIZED, "login required")
	}
	key := hashToken(token)
	if user, ok := s.sessions.Load(string(key)); ok {
		return user.(string), nil
	}
	epoch := s.epoch.Load()
	user, err := s.store.SessionUser(ctx, key)
	if err != nil {
		return "", err
	}
	if s.epoch.Load() != epoch {
		return user, nil // a session was forgotten meanwhile: maybe this one
	}
	if _, loaded := s.sessions.LoadOrStore(string(key), user); !loaded && s.cached.Add(1) > s.maxCached {
		s.sessions.Clear()
		s.cached.Store(0)
	}
	return user, nil
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
	s.epoch.Add(1)
	if _, cached := s.sessions.LoadAndDelete(key); cached {
		s.cached.Add(-1)
	}
}

// ForgetAll empties the cache: sessions may have ended unheard of.
func (s *Service) ForgetAll() {
	s.epoch.Add(1)
	s.sessions.Clear()
	s.cached.Store(0)
}

// Valid reports whether the session named by key still exists.
func (s *Service) Valid(ctx context.Context, key string) (bool, error) {
	raw, err := hex.DecodeString(key)
	if err != nil {
		return false, nil
	}
	_, err = s.store.SessionUser(ctx, raw)
	switch chat.ErrorCode(err) {
	case "":
		return true, nil
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
