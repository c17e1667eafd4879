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
//
// The row's id is its event's, so rows lie in the log's order, oldest
// first, and pruning walks them from the start without an index of its
// own: an index on created_ms cost every keyed message a b-tree insert,
// 6 % of the write path's throughput.
const idempotencySchema = `
CREATE TABLE IF NOT EXISTS idempotency_keys (
	event_id   INTEGER PRIMARY KEY,
	username   TEXT NOT NULL,
	key        TEXT NOT NULL,
	request    BLOB NOT NULL,
	created_ms INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS idempotency_keys_user_key ON idempotency_keys (username, key);
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

// findKeysSQL finds the keys of a batch, given as a JSON list of [user,
// key] pairs, with their events: one statement for the whole batch. A key
// whose event retention pruned is left out, as if it had expired.
const findKeysSQL = `SELECT k.username, k.key, k.request, ` + eventColumns + `
	FROM idempotency_keys k JOIN events e ON e.id = k.event_id
	WHERE (k.username, k.key) IN (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))`

// KeyedEvents returns the keys of keys the store holds, with their events:
// the lookup AppendOnce makes in its transaction, made outside it.
func (s *Store) KeyedEvents(ctx context.Context, keys []chat.Once) ([]chat.KeyedEvent, error) {
	return keyedEvents(ctx, func(ctx context.Context, list string) (*sql.Rows, error) {
		return s.read.QueryContext(ctx, findKeysSQL, list)
	}, keys)
}

// keyedEvents returns the keys of keys the store holds, with their
// events; find runs findKeysSQL with the keys as its JSON list.
func keyedEvents(ctx context.Context, find func(ctx context.Context, list string) (*sql.Rows, error), keys []chat.Once) ([]chat.KeyedEvent, error) {
	pairs := make([][2]string, len(keys))
	for i, k := range keys {
		pairs[i] = [2]string{k.User, k.Key}
	}
	list, err := json.Marshal(pairs)
	if err != nil {
		return nil, fmt.Errorf("idempotency keys: %w", err)
	}
	rows, err := find(ctx, string(list))
	if err != nil {
		return nil, fmt.Errorf("idempotency keys: %w", err)
	}
	var found []chat.KeyedEvent
	for rows.Next() {
		var k chat.KeyedEvent
		if k.Event, err = scanEvent(rows, &k.User, &k.Key, &k.Request); err != nil {
			rows.Close()
			return nil, fmt.Errorf("idempotency keys: %w", err)
		}
		found = append(found, k)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("idempotency keys: %w", err)
	}
	return found, nil
}

// insertKeySQL records that a key answered with an event, replacing the
// row of an expired use of the same key. (One statement for a whole
// batch, its rows as JSON, was slower: json_extract on every field.)
const insertKeySQL = `INSERT INTO idempotency_keys (event_id, username, key, request, created_ms)
	VALUES (?, ?, ?, ?, ?) ON CONFLICT (username, key) DO UPDATE SET
	event_id = excluded.event_id, request = excluded.request, created_ms = excluded.created_ms`

// storeKeys records that once[i], where given, answered with out[i];
// insert is insertKeySQL in the appending transaction.
func storeKeys(ctx context.Context, insert *sql.Stmt, once []chat.Once, out []chat.Event) error {
	for i, k := range once {
		if !k.Given() {
			continue
		}
		if _, err := insert.ExecContext(ctx, out[i].ID, k.User, k.Key, k.Request, out[i].TS.UnixMilli()); err != nil {
			return fmt.Errorf("append: store %s: %w", chat.IdempotencyHeader, err)
		}
	}
	return nil
}

// PruneIdempotencyKeys deletes at most limit keys stored before before
// and returns how many it deleted; the caller repeats it while it returns
// limit. One small statement at a time keeps the one write connection's
// other users waiting briefly.
func (s *Store) PruneIdempotencyKeys(ctx context.Context, before time.Time, limit int) (int64, error) {
	// The oldest rows first (they lie in the log's order): a batch of
	// them is read, never the whole table.
	res, err := s.write.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE event_id IN
		(SELECT event_id FROM idempotency_keys ORDER BY event_id LIMIT ?) AND created_ms < ?`, limit, before.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("prune idempotency keys: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune idempotency keys: %w", err)
	}
	return n, nil
}
