// Package auth registers accounts, checks passwords and keeps sessions.
package auth

import (
	"context"
	"crypto/sha256"
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

// Service logs users in and out. The first login of a free username
// registers it; later logins need the same password.
type Service struct {
	store Store
	cost  int
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

// New returns a Service hashing passwords with bcrypt at cost.
func New(store Store, cost int) *Service {
	return &Service{store: store, cost: cost, maxCached: maxCachedSessions}
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
	user, err := s.store.SessionUser(ctx, key)
	if err != nil {
		return "", err
	}
	if _, loaded := s.sessions.LoadOrStore(string(key), user); !loaded && s.cached.Add(1) > s.maxCached {
		s.sessions.Clear()
		s.cached.Store(0)
	}
	return user, nil
}

// Logout ends the session of token.
func (s *Service) Logout(ctx context.Context, token string) error {
	key := hashToken(token)
	if _, cached := s.sessions.LoadAndDelete(string(key)); cached {
		s.cached.Add(-1)
	}
	if err := s.store.DeleteSession(ctx, key); err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	return nil
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
