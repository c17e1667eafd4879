package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/ssechat/ssechat/chat"
)

// prunedKey names the meta row that holds the id of the newest pruned
// event: every event at or below it may be gone, every event above it is
// still there, because pruning only ever removes a prefix of the log.
const prunedKey = "pruned_through"

// pruneBatchSize bounds one pruning transaction. The store has one write
// connection, so each batch makes the appender wait; a few hundred rows
// keep that wait at a millisecond or two.
const pruneBatchSize = 500

// Prune deletes the oldest events of the log whose time is before cutoff,
// in small transactions so writers interleave with it, and returns how
// many it deleted. It removes a prefix of the log only (it stops at the
// first event that is new enough), so that one number, the pruned
// boundary, tells replay which Last-Event-IDs it can still serve.
// Memberships refer to events by id only; see pruneMemberships.
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
	boundary, err := s.PrunedThrough(ctx)
	if err != nil {
		return err
	}
	if _, err := s.write.ExecContext(ctx,
		`DELETE FROM memberships WHERE leave_id IS NOT NULL AND leave_id <= ?`, boundary); err != nil {
		return fmt.Errorf("prune: memberships: %w", err)
	}
	return nil
}

// pruneBatch deletes up to pruneBatchSize of the oldest events older than
// cutoffMS and moves the boundary in the same transaction, so that the
// boundary never claims less than was deleted.
func (s *Store) pruneBatch(ctx context.Context, cutoffMS int64) (int64, error) {
	// Find the batch on the read pool, so the write connection is only
	// held for the delete itself.
	rows, err := s.read.QueryContext(ctx, `SELECT id, ts_ms FROM events ORDER BY id LIMIT ?`, pruneBatchSize)
	if err != nil {
		return 0, fmt.Errorf("prune: find old events: %w", err)
	}
	var last int64
	var n int64
	for rows.Next() {
		var id, ts int64
		if err := rows.Scan(&id, &ts); err != nil {
			rows.Close()
			return 0, fmt.Errorf("prune: find old events: %w", err)
		}
		if ts >= cutoffMS {
			// A clock that stepped back could put an old event after a
			// new one; stopping here keeps the pruned part a prefix.
			break
		}
		last, n = id, n+1
	}
	if err := closeRows(rows); err != nil {
		return 0, fmt.Errorf("prune: find old events: %w", err)
	}
	if n == 0 {
		return 0, nil
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("prune: begin: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM events WHERE id <= ?`, last); err != nil {
		return 0, fmt.Errorf("prune: delete: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)`, prunedKey, last); err != nil {
		return 0, fmt.Errorf("prune: record boundary: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("prune: commit: %w", err)
	}
	return n, nil
}

// PrunedThrough returns the id of the newest event retention may have
// deleted (0 if nothing was ever pruned).
func (s *Store) PrunedThrough(ctx context.Context) (int64, error) {
	var id int64
	err := s.read.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, prunedKey).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("pruned boundary: %w", err)
	}
	return id, nil
}

// errPastRetention is what a resume from before the boundary gets; the
// broker turns it into a reset whose reason is this message.
func errPastRetention() error {
	return chat.Errorf(chat.EINVALID, "Last-Event-ID is older than the retained history")
}
