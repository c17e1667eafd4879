package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ssechat/ssechat/chat"
)

// prunedKey names the meta row that holds the id of the newest pruned
// event: every event at or below it may be gone, every event above it is
// still there, because pruning only ever removes a prefix of the log.
const prunedKey = "pruned_through"

// pruneBatchSize bounds one pruning transaction. Appends do not wait for
// a prune here (it deletes rows no append touches), but a small batch
// keeps each transaction's locks, WAL and dead tuples small, and lets
// autovacuum keep up between batches.
const pruneBatchSize = 500

// Prune deletes the oldest events of the log whose time is before cutoff,
// in small transactions, and returns how many it deleted. It removes a
// prefix of the log only (it stops at the first event that is new
// enough), so that one number, the pruned boundary, tells replay which
// Last-Event-IDs it can still serve. Several instances may prune at once:
// they delete the same rows and the boundary only grows.
func (s *Store) Prune(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	for {
		n, err := s.pruneBatch(ctx, cutoff.UnixMilli())
		total += n
		if err != nil {
			return total, err
		}
		if n < pruneBatchSize {
			break
		}
	}
	if total == 0 {
		return 0, nil
	}
	return total, s.pruneMemberships(ctx)
}

// pruneMemberships deletes the membership periods that ended at or below
// the pruned boundary. Replay serves only positions at or above the
// boundary and skips every period that ended at or before its position,
// so no resume can need them; without this, a user who joins and leaves
// often would grow the table forever. Open periods are never touched.
func (s *Store) pruneMemberships(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM memberships WHERE leave_id IS NOT NULL
		AND leave_id <= (SELECT value FROM meta WHERE key = $1)`, prunedKey)
	return wrap("prune: memberships", err)
}

// pruneBatch deletes up to pruneBatchSize of the oldest events older than
// cutoffMS and moves the boundary in the same statement (one transaction),
// so that the boundary never claims less than was deleted.
func (s *Store) pruneBatch(ctx context.Context, cutoffMS int64) (int64, error) {
	rows, _ := s.pool.Query(ctx, `SELECT id, ts_ms FROM events ORDER BY id LIMIT $1`, pruneBatchSize)
	var last, n int64
	for rows.Next() {
		var id, ts int64
		if err := rows.Scan(&id, &ts); err != nil {
			rows.Close()
			return 0, wrap("prune: find old events", err)
		}
		if ts >= cutoffMS {
			// A clock that stepped back could put an old event after a
			// new one; stopping here keeps the pruned part a prefix.
			break
		}
		last, n = id, n+1
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, wrap("prune: find old events", err)
	}
	if n == 0 {
		return 0, nil
	}
	_, err := s.pool.Exec(ctx, `WITH gone AS (DELETE FROM events WHERE id <= $1)
		INSERT INTO meta (key, value) VALUES ($2, $1)
		ON CONFLICT (key) DO UPDATE SET value = GREATEST(meta.value, excluded.value)`, last, prunedKey)
	if err != nil {
		return 0, wrap("prune: delete", err)
	}
	return n, nil
}

// PrunedThrough returns the id of the newest event retention may have
// deleted (0 if nothing was ever pruned).
func (s *Store) PrunedThrough(ctx context.Context) (int64, error) {
	var id int64
	err := s.pool.QueryRow(ctx, `SELECT value FROM meta WHERE key = $1`, prunedKey).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, wrap("pruned boundary", err)
	}
	return id, nil
}

// errPastRetention is what a resume from before the boundary gets; the
// broker turns it into a reset whose reason is this message.
func errPastRetention() error {
	return chat.Errorf(chat.EINVALID, "Last-Event-ID is older than the retained history")
}
