package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/ssechat/ssechat/chat"
)

const eventColumns = `id, kind, room, sender, recipient, subject, text, status, members, online, ts_ms, read_id`

// Append runs one appending transaction: it takes SQLite's write lock,
// calls prepare with the log's head, and writes the events prepare returns
// with the ids that follow it, in order, in one commit. Join and leave events
// also open and close the user's membership period in the same
// transaction, so the log and the memberships never disagree, and read
// events move their user's read marker. One commit for the whole batch is
// what lets concurrent writers share an fsync.
//
// Ids are contiguous: an id is taken only by a commit, and a transaction
// that rolls back gives its ids back (sqlite_sequence rolls back with it).
// So a reader that has every event up to N and sees N+2 knows that N+1
// exists, and Tail never skips one.
//
// newer, handed to prepare, holds the events above after up to the head
// (the first TailLimit of them): what the caller has not seen yet, read
// under the lock. The one writer of a single node has seen everything, and
// then nothing is read.
func (s *Store) Append(ctx context.Context, after int64, prepare func(head int64, newer []chat.Event) ([]chat.Event, error)) ([]chat.Event, error) {
	return s.AppendOnce(ctx, after, nil, withoutKeys(prepare))
}

// AppendOnce is Append with Idempotency-Keys (see idempotency.go).
func (s *Store) AppendOnce(ctx context.Context, after int64, keys []chat.Once, prepare func(head int64, newer []chat.Event, done []chat.KeyedEvent) ([]chat.Event, []chat.Once, error)) ([]chat.Event, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("append: begin: %w", err)
	}
	defer tx.Rollback()
	var head int64
	if err := tx.QueryRowContext(ctx, headSQL).Scan(&head); err != nil {
		return nil, fmt.Errorf("append: head: %w", err)
	}
	var newer []chat.Event
	if after < head {
		if newer, err = queryEvents(ctx, tx, tailSQL, after, TailLimit); err != nil {
			return nil, fmt.Errorf("append: read newer events: %w", err)
		}
	}
	var done []chat.KeyedEvent
	if len(keys) > 0 {
		find := tx.StmtContext(ctx, s.findKeys)
		done, err = keyedEvents(ctx, func(ctx context.Context, list string) (*sql.Rows, error) {
			return find.QueryContext(ctx, list)
		}, keys)
		find.Close()
		if err != nil {
			return nil, fmt.Errorf("append: %w", err)
		}
	}
	events, once, err := prepare(head, newer, done)
	if err != nil || len(events) == 0 {
		return nil, err
	}
	insert := tx.StmtContext(ctx, s.insertEvent)
	defer insert.Close()
	out := make([]chat.Event, len(events))
	for i, e := range events {
		e.ID = head + int64(i) + 1
		room, recipient := chat.StoredRoomRecipient(e)
		if _, err := insert.ExecContext(ctx, e.ID, string(e.Kind), null(room), null(e.From), null(recipient),
			null(e.User), null(e.Text), null(e.Status), e.Members, e.Online, e.TS.UnixMilli(), nullID(e.Read)); err != nil {
			return nil, fmt.Errorf("append: insert event: %w", err)
		}
		if err := applyMembership(ctx, tx, e); err != nil {
			return nil, err
		}
		if err := applyRead(ctx, tx, e); err != nil {
			return nil, err
		}
		out[i] = e
	}
	if len(once) > 0 {
		insert := tx.StmtContext(ctx, s.insertKey)
		err := storeKeys(ctx, insert, once, out)
		insert.Close()
		if err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("append: commit: %w", err)
	}
	return out, nil
}

const insertEventSQL = `INSERT INTO events (` + eventColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// headSQL reads the newest id ever taken. It survives pruning:
// AUTOINCREMENT never hands out an id twice.
const headSQL = `SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)`

func applyMembership(ctx context.Context, tx *sql.Tx, e chat.Event) error {
	switch e.Kind {
	case chat.KindJoin:
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO rooms (name, created_ms) VALUES (?, ?)`,
			e.Room, e.TS.UnixMilli()); err != nil {
			return fmt.Errorf("append: create room: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO memberships (username, room, join_id) VALUES (?, ?, ?)`,
			e.User, e.Room, e.ID); err != nil {
			return fmt.Errorf("append: join: %w", err)
		}
	case chat.KindLeave:
		if _, err := tx.ExecContext(ctx, `UPDATE memberships SET leave_id = ? WHERE username = ? AND room = ? AND leave_id IS NULL`,
			e.ID, e.User, e.Room); err != nil {
			return fmt.Errorf("append: leave: %w", err)
		}
	}
	return nil
}

func null(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// Head returns the id of the newest event ever written, 0 for an empty log.
func (s *Store) Head(ctx context.Context) (int64, error) {
	var head int64
	err := s.read.QueryRowContext(ctx, headSQL).Scan(&head)
	if err != nil {
		return 0, fmt.Errorf("head: %w", err)
	}
	return head, nil
}

// Snapshot returns the head, every room ever created and the memberships
// open at that head, all read in one transaction.
func (s *Store) Snapshot(ctx context.Context) (chat.Snapshot, error) {
	var snap chat.Snapshot
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return snap, fmt.Errorf("snapshot: %w", err)
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, headSQL).Scan(&snap.Head); err != nil {
		return snap, fmt.Errorf("snapshot: head: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT name FROM rooms ORDER BY name`)
	if err != nil {
		return snap, fmt.Errorf("snapshot: rooms: %w", err)
	}
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			rows.Close()
			return snap, fmt.Errorf("snapshot: rooms: %w", err)
		}
		snap.Rooms = append(snap.Rooms, r)
	}
	if err := closeRows(rows); err != nil {
		return snap, fmt.Errorf("snapshot: rooms: %w", err)
	}
	rows, err = tx.QueryContext(ctx, `SELECT username, room FROM memberships WHERE leave_id IS NULL`)
	if err != nil {
		return snap, fmt.Errorf("snapshot: memberships: %w", err)
	}
	for rows.Next() {
		var m chat.Membership
		if err := rows.Scan(&m.User, &m.Room); err != nil {
			rows.Close()
			return snap, fmt.Errorf("snapshot: memberships: %w", err)
		}
		snap.Members = append(snap.Members, m)
	}
	if err := closeRows(rows); err != nil {
		return snap, fmt.Errorf("snapshot: memberships: %w", err)
	}
	return snap, nil
}

// Tail returns up to limit events of the log with ids above after, in id
// order, whoever appended them: what a broker applies to catch up.
func (s *Store) Tail(ctx context.Context, after int64, limit int) ([]chat.Event, error) {
	return s.query(ctx, tailSQL, after, limit)
}

const tailSQL = `SELECT ` + eventColumns + ` FROM events WHERE id > ? ORDER BY id LIMIT ?`

// TailLimit bounds the events Append hands to prepare as newer.
const TailLimit = 1000

func closeRows(rows *sql.Rows) error {
	err := rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	return err
}

// RoomHistory returns up to limit messages of room with ids below before
// (0: from the newest), oldest first.
func (s *Store) RoomHistory(ctx context.Context, room string, before int64, limit int) ([]chat.Event, error) {
	return s.page(ctx, `SELECT `+eventColumns+` FROM events
		WHERE room = ? AND kind = 'message' AND id < ? ORDER BY id DESC LIMIT ?`,
		room, beforeOrMax(before), limit)
}

// PrivateHistory returns up to limit private messages between a and b with
// ids below before (0: from the newest), oldest first.
func (s *Store) PrivateHistory(ctx context.Context, a, b string, before int64, limit int) ([]chat.Event, error) {
	bound := beforeOrMax(before)
	return s.page(ctx, `SELECT * FROM (
		SELECT `+eventColumns+` FROM events WHERE kind = 'private' AND sender = ?1 AND recipient = ?2 AND id < ?3
		UNION
		SELECT `+eventColumns+` FROM events WHERE kind = 'private' AND sender = ?2 AND recipient = ?1 AND id < ?3
	) ORDER BY id DESC LIMIT ?4`, a, b, bound, limit)
}

func beforeOrMax(before int64) int64 {
	if before <= 0 {
		return 1<<63 - 1
	}
	return before
}

// page runs a newest-first query and returns its rows oldest first.
func (s *Store) page(ctx context.Context, query string, args ...any) ([]chat.Event, error) {
	events, err := s.query(ctx, query, args...)
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
	rows, err := s.read.QueryContext(ctx, `SELECT c.other, c.last_id, COALESCE(r.read_id, 0),
		(SELECT count(*) FROM (SELECT 1 FROM events e WHERE e.kind = 'private' AND e.sender = c.other AND e.recipient = ?1
			AND e.sender <> e.recipient AND e.id > COALESCE(r.read_id, 0) LIMIT `+unreadLimit+`) capped)
	FROM (SELECT other, MAX(id) AS last_id FROM (
		SELECT recipient AS other, id FROM events WHERE kind = 'private' AND sender = ?1
		UNION ALL
		SELECT sender AS other, id FROM events WHERE kind = 'private' AND recipient = ?1
	) GROUP BY other) c
	LEFT JOIN read_markers r ON r.username = ?1 AND r.scope = 'user:' || c.other
	ORDER BY c.last_id DESC`, user)
	if err != nil {
		return nil, fmt.Errorf("conversations: %w", err)
	}
	var out []chat.Conversation
	for rows.Next() {
		var c chat.Conversation
		if err := rows.Scan(&c.User, &c.LastID, &c.Read, &c.Unread); err != nil {
			rows.Close()
			return nil, fmt.Errorf("conversations: %w", err)
		}
		out = append(out, c)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("conversations: %w", err)
	}
	return out, nil
}

// EventsAfter returns, oldest first, up to limit events with ids in
// (after, upTo] that user may see: room messages, joins and leaves while
// they were a member (their own join and leave included) and their private
// messages, and their own read events (nobody else's). Every branch is an
// index seek on (key, id), so other users' traffic is never scanned.
// Presence and member counts are live state, not log events: a log written
// by an older version may hold some, and they are never replayed.
//
// If retention pruned events above after, the gap cannot be filled and
// EventsAfter returns a *chat.Error saying so.
func (s *Store) EventsAfter(ctx context.Context, user string, after, upTo int64, limit int) ([]chat.Event, error) {
	events, err := s.eventsAfter(ctx, user, after, upTo, limit)
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

func (s *Store) eventsAfter(ctx context.Context, user string, after, upTo int64, limit int) ([]chat.Event, error) {
	return s.query(ctx, `SELECT `+eventColumns+` FROM (
		SELECT e.* FROM memberships m JOIN events e ON e.room = m.room
			WHERE m.username = ?1 AND (m.leave_id IS NULL OR m.leave_id > ?2)
			  AND e.kind IN ('message', 'join', 'leave') AND e.id > ?2 AND e.id >= m.join_id AND (m.leave_id IS NULL OR e.id <= m.leave_id)
		UNION
		SELECT * FROM events WHERE kind = 'private' AND sender = ?1 AND id > ?2
		UNION
		SELECT * FROM events WHERE kind = 'private' AND recipient = ?1 AND id > ?2
		UNION
		SELECT * FROM events WHERE kind = 'read' AND subject = ?1 AND id > ?2

	) WHERE id <= ?4 ORDER BY id LIMIT ?3`, user, after, limit, upTo)
}

func (s *Store) query(ctx context.Context, query string, args ...any) ([]chat.Event, error) {
	return queryEvents(ctx, s.read, query, args...)
}

// queryer is a connection pool or a transaction.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func queryEvents(ctx context.Context, db queryer, query string, args ...any) ([]chat.Event, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	var out []chat.Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, e)
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	return out, nil
}

// scanEvent scans a row of eventColumns, after the columns before them
// into before.
func scanEvent(rows *sql.Rows, before ...any) (chat.Event, error) {
	var (
		e                                          chat.Event
		kind                                       string
		room, sender, recipient, subj, text, state sql.NullString
		members, online, read                      sql.NullInt64
		ts                                         int64
	)
	dest := append(before, &e.ID, &kind, &room, &sender, &recipient, &subj, &text, &state, &members, &online, &ts, &read)
	if err := rows.Scan(dest...); err != nil {
		return e, fmt.Errorf("scan event: %w", err)
	}
	e.Kind, e.Room, e.From, e.To, e.User, e.Text, e.Status = chat.Kind(kind), room.String,
		sender.String, recipient.String, subj.String, text.String, state.String
	e.Members, e.Online, e.Read = int(members.Int64), int(online.Int64), read.Int64
	e.TS = time.UnixMilli(ts).UTC()
	chat.LoadRead(&e)
	return e, nil
}
