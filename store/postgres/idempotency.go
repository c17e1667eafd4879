package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ssechat/ssechat/chat"
)

// Idempotency-Keys live beside the log (migrations/00003_idempotency.sql):
// a row per user and key, written in the transaction that appends its
// event. AppendOnce costs no round trip more than Append: the keys of the
// batch are looked up in the pipeline that takes the log's lock (each
// lookup one statement for the whole batch), and stored in the pipeline
// that commits. Appends are serialised by the lock and every key is
// written under it, so a lookup sees every key committed before it: two
// instances given the same key post once.

// withoutKeys adapts Append's prepare to AppendOnce's.
func withoutKeys(prepare func(head int64, newer []chat.Event) ([]chat.Event, error)) func(int64, []chat.Event, []chat.KeyedEvent) ([]chat.Event, []chat.Once, error) {
	return func(head int64, newer []chat.Event, _ []chat.KeyedEvent) ([]chat.Event, []chat.Once, error) {
		events, err := prepare(head, newer)
		return events, nil, err
	}
}

// keyLookup collects the answer of the lookup queued in the lock's
// pipeline.
type keyLookup struct {
	found []chat.KeyedEvent
}

// findKeysSQL finds keys with their events, one primary-key lookup per
// key. The LIMIT keeps each lookup a subquery of its own: flattened into
// a join, the plan that pgx's statement cache keeps (planned while the
// table was small, as it is after every deployment) hashed the keys and
// scanned the whole table, under the log's lock, 4 ms at 30,000 keys:
// the cluster's keyed write path fell to a third. A key whose event
// retention pruned is left out, as if it had expired.
const findKeysSQL = `SELECT k.username, k.key, k.request, ` + eventColumns + `
	FROM unnest($1::text[], $2::text[]) AS q(username, key)
	CROSS JOIN LATERAL (SELECT * FROM idempotency_keys i WHERE i.username = q.username AND i.key = q.key LIMIT 1) k
	JOIN events e ON e.id = k.event_id`

// queueKeyLookup queues, after the lock, the read of keys and their
// events. It runs after the lock was granted (READ COMMITTED takes a
// snapshot per statement), so it sees every key an earlier append wrote.
func queueKeyLookup(b *pgx.Batch, keys []chat.Once) *keyLookup {
	l := &keyLookup{}
	if len(keys) == 0 {
		return l
	}
	users, names := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		users[i], names[i] = k.User, k.Key
	}
	b.Queue(findKeysSQL, users, names).Query(func(rows pgx.Rows) error {
		var err error
		l.found, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (chat.KeyedEvent, error) {
			var k chat.KeyedEvent
			var err error
			k.Event, err = scanEventAfter(row, &k.User, &k.Key, &k.Request)
			return k, err
		})
		return err
	})
	return l
}

// done is the keys found with their events.
func (l *keyLookup) done() []chat.KeyedEvent { return l.found }

// queueKeys queues, in one statement, the keys that the appended events
// record (once[i] belongs to out[i]), each replacing the row of an expired
// use of the same key.
func queueKeys(b *pgx.Batch, once []chat.Once, out []chat.Event) {
	var users, names []string
	var requests [][]byte
	var ids, created []int64
	for i, k := range once {
		if i >= len(out) || !k.Given() {
			continue
		}
		users, names, requests = append(users, k.User), append(names, k.Key), append(requests, k.Request)
		ids, created = append(ids, out[i].ID), append(created, out[i].TS.UnixMilli())
	}
	if len(users) == 0 {
		return
	}
	b.Queue(`INSERT INTO idempotency_keys (username, key, request, event_id, created_ms)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::bigint[], $5::bigint[])
		ON CONFLICT (username, key) DO UPDATE SET
			request = excluded.request, event_id = excluded.event_id, created_ms = excluded.created_ms`,
		users, names, requests, ids, created)
}

// PruneIdempotencyKeys deletes at most limit keys stored before before
// and returns how many it deleted; the caller repeats it while it returns
// limit. Instances pruning at once skip each other's rows, and a row an
// append reused meanwhile is kept: the outer condition is checked again
// on the row as it is when locked.
func (s *Store) PruneIdempotencyKeys(ctx context.Context, before time.Time, limit int) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE (username, key) IN
		(SELECT username, key FROM idempotency_keys WHERE created_ms < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)
		AND created_ms < $1`, before.UnixMilli(), limit)
	if err != nil {
		return 0, wrap("prune idempotency keys", err)
	}
	return tag.RowsAffected(), nil
}

// KeyedEvents returns the keys of keys the store holds, with their events:
// the lookup AppendOnce makes under the log's lock, made without it.
func (s *Store) KeyedEvents(ctx context.Context, keys []chat.Once) ([]chat.KeyedEvent, error) {
	var b pgx.Batch
	lookup := queueKeyLookup(&b, keys)
	if b.Len() == 0 {
		return nil, nil
	}
	if err := s.pool.SendBatch(ctx, &b).Close(); err != nil {
		return nil, wrap("idempotency keys", err)
	}
	return lookup.done(), nil
}
