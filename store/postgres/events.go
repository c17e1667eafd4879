package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/ssechat/ssechat/chat"
)

// appendTimeout is the longest an append may take, lock wait included.
const appendTimeout = 30 * time.Second

const eventColumns = `id, kind, room, sender, recipient, subject, text, status, members, online, ts_ms, read_id`

// Append runs one appending transaction: it locks the log (the one row of
// log_head), calls prepare with the log's head, and writes the events
// prepare returns with the ids that follow it, in order, in one commit.
// Join and leave events also open and close the user's membership period
// in the same transaction, so the log and the memberships never disagree,
// and read events move their user's read marker. prepare runs while the log is locked for every instance, so it must be
// quick: an append whose connection stays idle in its transaction for
// longer than LockIdleTimeout (prepare too slow, the process frozen or cut
// off) is ended by the server, which frees the log for the others, and
// fails. prepare may read the store (Tail, Snapshot): that takes another
// connection of the pool, so the pool needs more connections than there
// are Appends in flight.
//
// The ids of the log are contiguous and become visible in id order,
// whatever the number of processes appending:
//
//   - Only a commit takes ids. The head is read and moved in the
//     appending transaction, so a transaction that rolls back (prepare
//     failed, the connection broke, the server crashed) moves nothing and
//     its ids go to the next append.
//   - Appends are serialised by the row lock on log_head: a second
//     appender's SELECT … FOR UPDATE waits for the first to end and then
//     reads the head the first committed (READ COMMITTED re-reads a row
//     that changed while it waited).
//   - PostgreSQL marks a transaction committed (in the proc array, which
//     is what snapshots consult) before it releases the transaction's
//     locks. So appender N+1, which got the lock only after appender N
//     released it, commits after N's commit is visible to everyone: a
//     reader whose snapshot holds an event of N+1 holds every event of N.
//
// So a reader that sees id N sees every id below it, and Tail, which
// reads every id above the last it saw, never skips an event that was
// committed late (TestTwoInstancesAppendInOrder hammers this). The commit
// is durable when it returns because synchronous_commit is on (the
// server's default; do not turn it off for this database). If the
// commit's answer is lost (the connection broke during COMMIT), Append
// returns an error although the events may be in the log: whoever tails
// the log will see them if they are.
//
// newer, handed to prepare, is what the broker needs first under the lock:
// the events above after, up to the head (the first TailLimit of them), read
// in the same round trip as the lock. Reading them with a separate query
// held the lock for one more round trip on every append of a cluster whose
// instances take turns.
func (s *Store) Append(ctx context.Context, after int64, prepare func(head int64, newer []chat.Event) ([]chat.Event, error)) ([]chat.Event, error) {
	return s.AppendOnce(ctx, after, nil, withoutKeys(prepare))
}

// AppendOnce is Append with Idempotency-Keys (see idempotency.go).
func (s *Store) AppendOnce(ctx context.Context, after int64, keys []chat.Once, prepare func(head int64, newer []chat.Event, done []chat.KeyedEvent) ([]chat.Event, []chat.Once, error)) ([]chat.Event, error) {
	// The transaction is two pipelines, BEGIN and the lock, then the
	// writes and COMMIT: two round trips, one of them while holding the
	// log's lock, against four with pgx.Tx (BEGIN, lock, writes, COMMIT).
	// Every instance waits for the lock, so its hold time bounds the
	// whole cluster's appends: with two instances appending batches of
	// 16, an append took 0.5 ms this way and 1.2 ms with pgx.Tx
	// (BenchmarkAppendTwoInstances, best of several runs).
	//
	// The deadline bounds an append on a network that went silent (no
	// reset): without it the writers would wait for the kernel's TCP
	// timeout, a quarter of an hour. It maps to "database unavailable".
	ctx, cancel := context.WithTimeout(ctx, appendTimeout)
	defer cancel()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, wrap("append: connect", err)
	}
	defer func() {
		// Anything but a commit leaves the transaction open or failed:
		// roll it back. Should that fail too, the pool drops a
		// connection that is not idle, and the server rolls back.
		if conn.Conn().PgConn().TxStatus() != 'I' {
			conn.Exec(ctx, `ROLLBACK`)
		}
		conn.Release()
	}()
	var head int64
	var newer []chat.Event
	var lock pgx.Batch
	lock.Queue(`BEGIN`)
	lock.Queue(s.lockTimeoutSQL)
	lock.Queue(`SELECT id FROM log_head FOR UPDATE`).QueryRow(func(row pgx.Row) error { return row.Scan(&head) })
	// READ COMMITTED: this statement's snapshot is taken after the lock
	// was granted, so it sees every event up to head.
	lock.Queue(tailSQL, after, TailLimit).Query(func(rows pgx.Rows) error {
		var err error
		newer, err = pgx.CollectRows(rows, scanEvent)
		return err
	})
	lookup := queueKeyLookup(&lock, keys)
	if err := conn.SendBatch(ctx, &lock).Close(); err != nil {
		return nil, wrap("append: lock the log", err)
	}
	events, once, err := prepare(head, newer, lookup.done())
	if err != nil || len(events) == 0 {
		return nil, err
	}
	out := make([]chat.Event, len(events))
	cols := newEventColumns(len(events))
	for i, e := range events {
		e.ID = head + int64(i) + 1
		cols.add(e)
		out[i] = e
	}
	// The events in one INSERT, the membership changes in log order, the
	// new head, COMMIT. A statement that fails makes the server skip the
	// rest of the pipeline, COMMIT included.
	var batch pgx.Batch
	batch.Queue(insertEventsSQL, cols.args()...)
	for _, e := range out {
		switch e.Kind {
		case chat.KindJoin:
			batch.Queue(`INSERT INTO rooms (name, created_ms) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
				e.Room, e.TS.UnixMilli())
			batch.Queue(`INSERT INTO memberships (username, room, join_id) VALUES ($1, $2, $3)`,
				e.User, e.Room, e.ID)
		case chat.KindLeave:
			batch.Queue(`UPDATE memberships SET leave_id = $1 WHERE username = $2 AND room = $3 AND leave_id IS NULL`,
				e.ID, e.User, e.Room)
		case chat.KindRead:
			batch.Queue(moveReadMarkerSQL, e.User, chat.ReadScope(e.Room, e.To), e.Read)
		}
	}
	queueKeys(&batch, once, out)
	batch.Queue(`UPDATE log_head SET id = $1`, out[len(out)-1].ID)
	batch.Queue(`COMMIT`).Exec(func(tag pgconn.CommandTag) error {
		// COMMIT of a failed transaction answers ROLLBACK, not an error.
		if tag.String() != "COMMIT" {
			return fmt.Errorf("commit answered %q", tag)
		}
		return nil
	})
	if err := conn.SendBatch(ctx, &batch).Close(); err != nil {
		return nil, wrap("append: write", err)
	}
	return out, nil
}

// insertEventsSQL writes a batch of events in one statement: a row per
// element of the arrays.
const insertEventsSQL = `INSERT INTO events (` + eventColumns + `)
	SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
		$7::text[], $8::text[], $9::integer[], $10::integer[], $11::bigint[], $12::bigint[])`

// eventColumnArrays holds a batch of events column by column, for unnest. An
// empty string is stored as NULL, as the SQLite store does.
type eventColumnArrays struct {
	id, ts                                       []int64
	kind                                         []string
	room, sender, recipient, subject, text, stat []pgtype.Text
	members, online                              []int32
	read                                         []pgtype.Int8
}

func newEventColumns(n int) *eventColumnArrays {
	return &eventColumnArrays{
		id: make([]int64, 0, n), ts: make([]int64, 0, n), kind: make([]string, 0, n),
		room: make([]pgtype.Text, 0, n), sender: make([]pgtype.Text, 0, n), recipient: make([]pgtype.Text, 0, n),
		subject: make([]pgtype.Text, 0, n), text: make([]pgtype.Text, 0, n), stat: make([]pgtype.Text, 0, n),
		members: make([]int32, 0, n), online: make([]int32, 0, n), read: make([]pgtype.Int8, 0, n),
	}
}

func (c *eventColumnArrays) add(e chat.Event) {
	c.id = append(c.id, e.ID)
	c.kind = append(c.kind, string(e.Kind))
	room, recipient := chat.StoredRoomRecipient(e)
	c.room = append(c.room, null(room))
	c.sender = append(c.sender, null(e.From))
	c.recipient = append(c.recipient, null(recipient))
	c.subject = append(c.subject, null(e.User))
	c.text = append(c.text, null(e.Text))
	c.stat = append(c.stat, null(e.Status))
	c.members = append(c.members, int32(e.Members))
	c.online = append(c.online, int32(e.Online))
	c.ts = append(c.ts, e.TS.UnixMilli())
	c.read = append(c.read, pgtype.Int8{Int64: e.Read, Valid: e.Read != 0})
}

// args are insertEventsSQL's arguments.
func (c *eventColumnArrays) args() []any {
	return []any{c.id, c.kind, c.room, c.sender, c.recipient, c.subject, c.text, c.stat,
		c.members, c.online, c.ts, c.read}
}

func null(s string) pgtype.Text { return pgtype.Text{String: s, Valid: s != ""} }

// Head returns the id of the newest event ever written, 0 for an empty log.
// It survives pruning: log_head only grows.
func (s *Store) Head(ctx context.Context) (int64, error) {
	var head int64
	if err := s.pool.QueryRow(ctx, `SELECT id FROM log_head`).Scan(&head); err != nil {
		return 0, wrap("head", err)
	}
	return head, nil
}

// Snapshot returns the head, every room ever created and the memberships
// open at that head, all read in one REPEATABLE READ transaction, which
// sees one moment of the database in all its statements.
func (s *Store) Snapshot(ctx context.Context) (chat.Snapshot, error) {
	var snap chat.Snapshot
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return snap, wrap("snapshot", err)
	}
	defer tx.Rollback(ctx)
	if err := tx.QueryRow(ctx, `SELECT id FROM log_head`).Scan(&snap.Head); err != nil {
		return snap, wrap("snapshot: head", err)
	}
	rows, _ := tx.Query(ctx, `SELECT name FROM rooms ORDER BY name`)
	if snap.Rooms, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return snap, wrap("snapshot: rooms", err)
	}
	rows, _ = tx.Query(ctx, `SELECT username, room FROM memberships WHERE leave_id IS NULL`)
	snap.Members, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (chat.Membership, error) {
		var m chat.Membership
		err := row.Scan(&m.User, &m.Room)
		return m, err
	})
	if err != nil {
		return snap, wrap("snapshot: memberships", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return snap, wrap("snapshot: commit", err)
	}
	return snap, nil
}

// Tail returns up to limit events of the log with ids above after, in id
// order, whoever appended them: what a broker applies to catch up. See
// Append for why it never skips one.
func (s *Store) Tail(ctx context.Context, after int64, limit int) ([]chat.Event, error) {
	return s.query(ctx, "tail", tailSQL, after, limit)
}

const tailSQL = `SELECT ` + eventColumns + ` FROM events WHERE id > $1 ORDER BY id LIMIT $2`

// TailLimit bounds the events Append hands to prepare as newer.
const TailLimit = 1000

// RoomHistory returns up to limit messages of room with ids below before
// (0: from the newest), oldest first.
func (s *Store) RoomHistory(ctx context.Context, room string, before int64, limit int) ([]chat.Event, error) {
	return s.page(ctx, "room history", `SELECT `+eventColumns+` FROM events
		WHERE room = $1 AND kind = 'message' AND id < $2 ORDER BY id DESC LIMIT $3`,
		room, beforeOrMax(before), limit)
}

// PrivateHistory returns up to limit private messages between a and b with
// ids below before (0: from the newest), oldest first.
func (s *Store) PrivateHistory(ctx context.Context, a, b string, before int64, limit int) ([]chat.Event, error) {
	return s.page(ctx, "private history", `SELECT `+eventColumns+` FROM (
		(SELECT `+eventColumns+` FROM events WHERE kind = 'private' AND sender = $1 AND recipient = $2 AND id < $3
			ORDER BY id DESC LIMIT $4)
		UNION
		(SELECT `+eventColumns+` FROM events WHERE kind = 'private' AND sender = $2 AND recipient = $1 AND id < $3
			ORDER BY id DESC LIMIT $4)
	) AS both_ways ORDER BY id DESC LIMIT $4`, a, b, beforeOrMax(before), limit)
}

func beforeOrMax(before int64) int64 {
	if before <= 0 {
		return 1<<63 - 1
	}
	return before
}

// page runs a newest-first query and returns its rows oldest first.
func (s *Store) page(ctx context.Context, op, query string, args ...any) ([]chat.Event, error) {
	events, err := s.query(ctx, op, query, args...)
	if err != nil {
		return nil, err
	}
	for i, j := 0, len(events)-1; i < j; i, j = i+1, j-1 {
		events[i], events[j] = events[j], events[i]
	}
	return events, nil
}

// Conversations returns the users that user has private messages with,
// the id of the latest message with each, newest conversation first, and
// how far user has read each (see ConversationRead).
func (s *Store) Conversations(ctx context.Context, user string) ([]chat.Conversation, error) {
	rows, _ := s.pool.Query(ctx, `SELECT c.other, c.last_id, COALESCE(r.read_id, 0),
		(SELECT count(*) FROM (SELECT 1 FROM events e WHERE e.kind = 'private' AND e.sender = c.other AND e.recipient = $1
			AND e.sender <> e.recipient AND e.id > COALESCE(r.read_id, 0) LIMIT `+unreadLimit+`) capped)
	FROM (SELECT other, MAX(id) AS last_id FROM (
		SELECT recipient AS other, id FROM events WHERE kind = 'private' AND sender = $1
		UNION ALL
		SELECT sender AS other, id FROM events WHERE kind = 'private' AND recipient = $1
	) AS mine GROUP BY other) AS c
	LEFT JOIN read_markers r ON r.username = $1 AND r.scope = 'user:' || c.other
	ORDER BY c.last_id DESC`, user)
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (chat.Conversation, error) {
		var c chat.Conversation
		err := row.Scan(&c.User, &c.LastID, &c.Read, &c.Unread)
		return c, err
	})
	if err != nil {
		return nil, wrap("conversations", err)
	}
	return out, nil
}

// EventsAfter returns, oldest first, up to limit events with ids in
// (after, upTo] that user may see: room messages, joins and leaves while
// they were a member (their own join and leave included), their private
// messages and their own read events (nobody else's). Every branch is an
// index seek on (key, id), so other users' traffic is never scanned.
//
// If retention pruned events above after, the gap cannot be filled and
// EventsAfter returns a *chat.Error saying so.
func (s *Store) EventsAfter(ctx context.Context, user string, after, upTo int64, limit int) ([]chat.Event, error) {
	events, err := s.query(ctx, "events after", eventsAfterSQL, user, after, limit, upTo)
	if err != nil {
		return nil, err
	}
	// The boundary is read after the events: it only grows, so if it is
	// still at or below after now, nothing the query should have seen had
	// been pruned when it ran. Reading it first would race with a prune.
	pruned, err := s.PrunedThrough(ctx)
	if err != nil {
		return nil, err
	}
	if after < pruned {
		return nil, errPastRetention()
	}
	return events, nil
}

// eventsAfterSQL: each branch stops at limit rows on its own, so that a
// resume far behind reads limit rows per branch, not the whole backlog.
// The room branch walks the user's membership periods (a primary key seek
// on username) and, for each, the room's events in the period (a range on
// events_room). It is LATERAL so that the plan stays a seek per period
// even as the generic plan of the cached prepared statement: a plain join
// let the planner's generic plan scan the log's id range instead, every
// room's traffic.
const eventsAfterSQL = `SELECT ` + eventColumns + ` FROM (
	(SELECT e.* FROM memberships m CROSS JOIN LATERAL (
		SELECT * FROM events e
			WHERE e.room = m.room AND e.id > GREATEST($2, m.join_id - 1) AND e.id <= LEAST($4, COALESCE(m.leave_id, $4))
			  AND e.kind IN ('message', 'join', 'leave')
			ORDER BY e.id LIMIT $3) e
		WHERE m.username = $1 AND (m.leave_id IS NULL OR m.leave_id > $2)
		ORDER BY e.id LIMIT $3)
	UNION
	(SELECT * FROM events WHERE kind = 'private' AND sender = $1 AND id > $2 AND id <= $4 ORDER BY id LIMIT $3)
	UNION
	(SELECT * FROM events WHERE kind = 'private' AND recipient = $1 AND id > $2 AND id <= $4 ORDER BY id LIMIT $3)
	UNION
	(SELECT * FROM events WHERE kind = 'read' AND subject = $1 AND id > $2 AND id <= $4 ORDER BY id LIMIT $3)
) AS visible ORDER BY id LIMIT $3`

func (s *Store) query(ctx context.Context, op, query string, args ...any) ([]chat.Event, error) {
	rows, _ := s.pool.Query(ctx, query, args...)
	events, err := pgx.CollectRows(rows, scanEvent)
	if err != nil {
		return nil, wrap(op, err)
	}
	return events, nil
}

func scanEvent(row pgx.CollectableRow) (chat.Event, error) { return scanEventAfter(row) }

// scanEventAfter scans a row of eventColumns, after the columns before
// them into before.
func scanEventAfter(row pgx.CollectableRow, before ...any) (chat.Event, error) {
	var (
		e                                          chat.Event
		kind                                       string
		room, sender, recipient, subj, text, state pgtype.Text
		members, online                            pgtype.Int4
		ts                                         int64
		read                                       pgtype.Int8
	)
	dest := append(before, &e.ID, &kind, &room, &sender, &recipient, &subj, &text, &state, &members, &online, &ts, &read)
	if err := row.Scan(dest...); err != nil {
		return e, fmt.Errorf("scan event: %w", err)
	}
	e.Kind, e.Room, e.From, e.To, e.User, e.Text, e.Status = chat.Kind(kind), room.String,
		sender.String, recipient.String, subj.String, text.String, state.String
	e.Members, e.Online, e.Read = int(members.Int32), int(online.Int32), read.Int64
	e.TS = time.UnixMilli(ts).UTC()
	chat.LoadRead(&e)
	return e, nil
}
