package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ssechat/ssechat/chat"
)

// Idempotency-Keys live beside the log: a row per user and key, written in
// the transaction that appends its event, so that the key and the event
// are durable together or not at all. created_ms is the event's time;
// rows older than chat.IdempotencyTTL are only housekeeping, and the
// broker judges a key's age by its event, so pruning late is harmless.
const idempotencySchema = `
CREATE TABLE IF NOT EXISTS idempotency_keys (
	username   TEXT NOT NULL,
	key        TEXT NOT NULL,
	event_id   INTEGER NOT NULL,
	request    BLOB NOT NULL,
	created_ms INTEGER NOT NULL,
	PRIMARY KEY (username, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_created ON idempotency_keys (created_ms);
`

// migrateIdempotency adds the keys' table to a file made before it.
func migrateIdempotency(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, idempotencySchema); err != nil {
		return fmt.Errorf("idempotency keys: %w", err)
	}
	return nil
}

// withoutKeys adapts Append's prepare to AppendOnce's.
func withoutKeys(prepare func(head int64, newer []chat.Event) ([]chat.Event, error)) func(int64, []chat.Event, []chat.KeyedEvent) ([]chat.Event, []chat.Once, error) {
	return func(head int64, newer []chat.Event, _ []chat.KeyedEvent) ([]chat.Event, []chat.Once, error) {
		events, err := prepare(head, newer)
		return events, nil, err
	}
}

// keyedEvents returns the keys of keys the store holds, with their
// events; a key whose event retention pruned is left out, as if it had
// expired. Two queries, each one statement for the whole batch.
func keyedEvents(ctx context.Context, tx queryer, keys []chat.Once) ([]chat.KeyedEvent, error) {
	pairs := make([][2]string, len(keys))
	for i, k := range keys {
		pairs[i] = [2]string{k.User, k.Key}
	}
	list, err := json.Marshal(pairs)
	if err != nil {
		return nil, fmt.Errorf("idempotency keys: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT username, key, request, event_id FROM idempotency_keys
		WHERE (username, key) IN (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))`,
		string(list))
	if err != nil {
		return nil, fmt.Errorf("idempotency keys: %w", err)
	}
	var found []chat.KeyedEvent
	var eventIDs []int64
	for rows.Next() {
		var k chat.KeyedEvent
		if err := rows.Scan(&k.User, &k.Key, &k.Request, &k.Event.ID); err != nil {
			rows.Close()
			return nil, fmt.Errorf("idempotency keys: %w", err)
		}
		found = append(found, k)
		eventIDs = append(eventIDs, k.Event.ID)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("idempotency keys: %w", err)
	}
	if len(found) == 0 {
		return nil, nil
	}
	list, err = json.Marshal(eventIDs)
	if err != nil {
		return nil, fmt.Errorf("idempotency keys: %w", err)
	}
	events, err := queryEvents(ctx, tx, `SELECT `+eventColumns+` FROM events
		WHERE id IN (SELECT value FROM json_each(?))`, string(list))
	if err != nil {
		return nil, fmt.Errorf("idempotency keys' events: %w", err)
	}
	byID := make(map[int64]chat.Event, len(events))
	for _, e := range events {
		byID[e.ID] = e
	}
	out := found[:0]
	for _, k := range found {
		if e, ok := byID[k.Event.ID]; ok {
			k.Event = e
			out = append(out, k)
		}
	}
	return out, nil
}

// storeKey records that key answered with e, replacing the row of an
// expired use of the same key.
func storeKey(ctx context.Context, tx *sql.Tx, key chat.Once, e chat.Event) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO idempotency_keys (username, key, event_id, request, created_ms)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (username, key) DO UPDATE SET
		event_id = excluded.event_id, request = excluded.request, created_ms = excluded.created_ms`,
		key.User, key.Key, e.ID, key.Request, e.TS.UnixMilli()); err != nil {
		return fmt.Errorf("append: store %s: %w", chat.IdempotencyHeader, err)
	}
	return nil
}

// PruneIdempotencyKeys deletes at most limit keys stored before before
// and returns how many it deleted; the caller repeats it while it returns
// limit. One small statement at a time keeps the one write connection's
// other users waiting briefly.
func (s *Store) PruneIdempotencyKeys(ctx context.Context, before time.Time, limit int) (int64, error) {
	res, err := s.write.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE rowid IN
		(SELECT rowid FROM idempotency_keys WHERE created_ms < ? LIMIT ?)`, before.UnixMilli(), limit)
	if err != nil {
		return 0, fmt.Errorf("prune idempotency keys: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune idempotency keys: %w", err)
	}
	return n, nil
}
