package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ssechat/ssechat/chat"
)

// migrateSessions brings the sessions table of a file made before
// sessions expired up to date: it gains last_used_ms, which starts at the
// time of the upgrade (nobody is logged out by it: each session then lives
// its full TTL from now), and the indexes that logout-everywhere and
// pruning read.
func migrateSessions(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sessions: begin: %w", err)
	}
	defer tx.Rollback()
	var has int
	if err := tx.QueryRowContext(ctx,
		`SELECT count(*) FROM pragma_table_info('sessions') WHERE name = 'last_used_ms'`).Scan(&has); err != nil {
		return fmt.Errorf("sessions: inspect: %w", err)
	}
	if has == 0 {
		// ADD COLUMN ... NOT NULL needs a constant default; every insert
		// gives the value, and the update replaces the default at once.
		if _, err := tx.ExecContext(ctx, `ALTER TABLE sessions ADD COLUMN last_used_ms INTEGER NOT NULL DEFAULT 0`); err != nil {
			return fmt.Errorf("sessions: add last_used_ms: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET last_used_ms = ?`, nowMS()); err != nil {
			return fmt.Errorf("sessions: set last_used_ms: %w", err)
		}
	}
	for _, q := range []string{
		`CREATE INDEX IF NOT EXISTS sessions_username ON sessions (username)`,
		`CREATE INDEX IF NOT EXISTS sessions_last_used ON sessions (last_used_ms)`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("sessions: index: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sessions: commit: %w", err)
	}
	return nil
}

// CreateSession stores a session for username under the token's hash,
// opened and last used at now.
func (s *Store) CreateSession(ctx context.Context, tokenHash []byte, username string, now time.Time) error {
	err := s.execs.exec(ctx,
		`INSERT INTO sessions (token_hash, username, created_ms, last_used_ms) VALUES (?, ?, ?, ?)`,
		tokenHash, username, now.UnixMilli(), now.UnixMilli())
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// Session returns the session stored under tokenHash, or
// chat.EUNAUTHORIZED. It does not judge expiry.
func (s *Store) Session(ctx context.Context, tokenHash []byte) (chat.Session, error) {
	var sess chat.Session
	var created, used int64
	err := s.read.QueryRowContext(ctx,
		`SELECT username, created_ms, last_used_ms FROM sessions WHERE token_hash = ?`, tokenHash).
		Scan(&sess.User, &created, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Session{}, chat.Errorf(chat.EUNAUTHORIZED, "invalid or expired session")
	}
	if err != nil {
		return chat.Session{}, fmt.Errorf("get session: %w", err)
	}
	sess.Created, sess.LastUsed = time.UnixMilli(created), time.UnixMilli(used)
	return sess, nil
}

// TouchSession records that the session was used at at, unless a later
// use is recorded already. A session that is gone stays gone.
func (s *Store) TouchSession(ctx context.Context, tokenHash []byte, at time.Time) error {
	err := s.execs.exec(ctx,
		`UPDATE sessions SET last_used_ms = ? WHERE token_hash = ? AND last_used_ms < ?`,
		at.UnixMilli(), tokenHash, at.UnixMilli())
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// DeleteSession ends a session; deleting an unknown one is not an error.
func (s *Store) DeleteSession(ctx context.Context, tokenHash []byte) error {
	if err := s.execs.exec(ctx, `DELETE FROM sessions WHERE token_hash = ?`, tokenHash); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// DeleteUserSessions ends every session of user (the registered spelling)
// and returns their token hashes.
func (s *Store) DeleteUserSessions(ctx context.Context, user string) ([][]byte, error) {
	keys, err := s.deleteReturning(ctx, `DELETE FROM sessions WHERE username = ? RETURNING token_hash`, user)
	if err != nil {
		return nil, fmt.Errorf("delete sessions of %s: %w", user, err)
	}
	return keys, nil
}

// PruneSessions deletes at most limit sessions last used before before and
// returns their token hashes; the caller repeats it while it returns limit.
// One small statement at a time keeps the wait of the one write
// connection's other users short.
func (s *Store) PruneSessions(ctx context.Context, before time.Time, limit int) ([][]byte, error) {
	keys, err := s.deleteReturning(ctx, `DELETE FROM sessions WHERE token_hash IN
		(SELECT token_hash FROM sessions WHERE last_used_ms < ? LIMIT ?) RETURNING token_hash`,
		before.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("prune sessions: %w", err)
	}
	return keys, nil
}

// deleteReturning runs a DELETE ... RETURNING token_hash on the write
// connection; SQLite makes every change on the first step, and commits
// when the rows are closed.
func (s *Store) deleteReturning(ctx context.Context, query string, args ...any) ([][]byte, error) {
	rows, err := s.write.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	var keys [][]byte
	for rows.Next() {
		var key []byte
		if err := rows.Scan(&key); err != nil {
			rows.Close()
			return nil, err
		}
		keys = append(keys, key)
	}
	if err := closeRows(rows); err != nil {
		return nil, err
	}
	return keys, nil
}
