package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ssechat/ssechat/chat"
)

// CreateSession stores a session for username under the token's hash,
// opened and last used at now.
func (s *Store) CreateSession(ctx context.Context, tokenHash []byte, username string, now time.Time) error {
	_, err := s.pool.Exec(ctx,
		`INSERT INTO sessions (token_hash, username, created_ms, last_used_ms) VALUES ($1, $2, $3, $3)`,
		tokenHash, username, now.UnixMilli())
	return wrap("create session", err)
}

// Session returns the session stored under tokenHash, or
// chat.EUNAUTHORIZED. It does not judge expiry.
func (s *Store) Session(ctx context.Context, tokenHash []byte) (chat.Session, error) {
	var sess chat.Session
	var created, used int64
	err := s.pool.QueryRow(ctx,
		`SELECT username, created_ms, last_used_ms FROM sessions WHERE token_hash = $1`, tokenHash).
		Scan(&sess.User, &created, &used)
	if errors.Is(err, pgx.ErrNoRows) {
		return chat.Session{}, chat.Errorf(chat.EUNAUTHORIZED, "invalid or expired session")
	}
	if err != nil {
		return chat.Session{}, wrap("get session", err)
	}
	sess.Created, sess.LastUsed = time.UnixMilli(created), time.UnixMilli(used)
	return sess, nil
}

// TouchSession records that the session was used at at, unless a later
// use is recorded already (by another instance, say). A session that is
// gone stays gone.
func (s *Store) TouchSession(ctx context.Context, tokenHash []byte, at time.Time) error {
	_, err := s.pool.Exec(ctx,
		`UPDATE sessions SET last_used_ms = $2 WHERE token_hash = $1 AND last_used_ms < $2`,
		tokenHash, at.UnixMilli())
	return wrap("touch session", err)
}

// DeleteSession ends a session; deleting an unknown one is not an error.
func (s *Store) DeleteSession(ctx context.Context, tokenHash []byte) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE token_hash = $1`, tokenHash)
	return wrap("delete session", err)
}

// DeleteUserSessions ends every session of user (the registered spelling)
// and returns their token hashes.
func (s *Store) DeleteUserSessions(ctx context.Context, user string) ([][]byte, error) {
	keys, err := s.deleteReturning(ctx, `DELETE FROM sessions WHERE username = $1 RETURNING token_hash`, user)
	return keys, wrap("delete sessions of "+user, err)
}

// PruneSessions deletes at most limit sessions last used before before and
// returns their token hashes; the caller repeats it while it returns
// limit. Instances pruning at once skip each other's rows instead of
// waiting for them, and none deletes a row another one returned.
func (s *Store) PruneSessions(ctx context.Context, before time.Time, limit int) ([][]byte, error) {
	keys, err := s.deleteReturning(ctx, `DELETE FROM sessions WHERE token_hash IN
		(SELECT token_hash FROM sessions WHERE last_used_ms < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
		AND last_used_ms < $1 RETURNING token_hash`, before.UnixMilli(), limit)
	return keys, wrap("prune sessions", err)
}

func (s *Store) deleteReturning(ctx context.Context, query string, args ...any) ([][]byte, error) {
	rows, _ := s.pool.Query(ctx, query, args...)
	keys, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, err
	}
	return keys, nil
}
