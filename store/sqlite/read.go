package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/ssechat/ssechat/chat"
)

// migrateReads gives the events of a file made before read markers the
// column that holds a read event's marker.
func migrateReads(ctx context.Context, db *sql.DB) error {
	var has int
	if err := db.QueryRowContext(ctx,
		`SELECT count(*) FROM pragma_table_info('events') WHERE name = 'read_id'`).Scan(&has); err != nil {
		return fmt.Errorf("events: inspect: %w", err)
	}
	if has == 0 {
		if _, err := db.ExecContext(ctx, `ALTER TABLE events ADD COLUMN read_id INTEGER`); err != nil {
			return fmt.Errorf("events: add read_id: %w", err)
		}
	}
	return nil
}

func nullID(id int64) sql.NullInt64 { return sql.NullInt64{Int64: id, Valid: id != 0} }

// applyRead moves the marker of a read event's user, in the appending
// transaction; never backwards, whatever the broker decided.
func applyRead(ctx context.Context, tx *sql.Tx, e chat.Event) error {
	if e.Kind != chat.KindRead {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO read_markers (username, scope, read_id) VALUES (?, ?, ?)
		ON CONFLICT (username, scope) DO UPDATE SET read_id = max(read_id, excluded.read_id)`,
		e.User, chat.ReadScope(e.Room, e.To), e.Read); err != nil {
		return fmt.Errorf("append: read marker: %w", err)
	}
	return nil
}

// ReadFloors returns, for each key, how far its user has read: the stored
// marker or, for a room, the join of their current membership if that is
// later (everything before it was never theirs to read); 0 if neither.
// The broker calls it under the log's lock, where this store's one writer
// is the caller: the read pool sees every marker there is.
func (s *Store) ReadFloors(ctx context.Context, keys []chat.ReadKey) ([]int64, error) {
	out := make([]int64, len(keys))
	for i, k := range keys {
		// Local reads of two primary keys: one query per key costs
		// microseconds, unlike a round trip to PostgreSQL.
		err := s.read.QueryRowContext(ctx, `SELECT max(
			COALESCE((SELECT read_id FROM read_markers WHERE username = ?1 AND scope = ?2), 0),
			COALESCE((SELECT max(join_id) FROM memberships WHERE username = ?1 AND room = ?3 AND leave_id IS NULL), 0))`,
			k.User, chat.ReadScope(k.Room, k.With), k.Room).Scan(&out[i])
		if err != nil {
			return nil, fmt.Errorf("read floors: %w", err)
		}
	}
	return out, nil
}

// ReadTarget returns the log's head and where a mark of id moves key's
// marker: the newest message at or below id of the room (anyone's) or of
// the conversation (either way), 0 if none. Both are read in one
// statement, so if id is at most the head, no message at or below id can
// commit later. Each message is a backward range of one index from id:
// events_room, or events_private_sender for each way.
func (s *Store) ReadTarget(ctx context.Context, key chat.ReadKey, id int64) (target, head int64, err error) {
	query, args := `SELECT `+headExpr+`,
		COALESCE((SELECT id FROM events WHERE room = ?2 AND kind = 'message' AND id <= ?1 ORDER BY id DESC LIMIT 1), 0)`,
		[]any{id, key.Room}
	if key.Room == "" {
		query, args = `SELECT `+headExpr+`, max(
			COALESCE((SELECT id FROM events WHERE kind = 'private' AND sender = ?2 AND recipient = ?3 AND id <= ?1 ORDER BY id DESC LIMIT 1), 0),
			COALESCE((SELECT id FROM events WHERE kind = 'private' AND sender = ?3 AND recipient = ?2 AND id <= ?1 ORDER BY id DESC LIMIT 1), 0))`,
			[]any{id, key.User, key.With}
	}
	if err := s.read.QueryRowContext(ctx, query, args...).Scan(&head, &target); err != nil {
		return 0, 0, fmt.Errorf("read target: %w", err)
	}
	return target, head, nil
}

// headExpr is headSQL as an expression.
const headExpr = `COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)`

// RoomReads returns how far user has read each of rooms they are a member
// of now (the others are left out) and how many messages others wrote to
// it since: read is the later of their marker and their join. One query;
// each count is a range of the events_room index from read on.
func (s *Store) RoomReads(ctx context.Context, user string, rooms []string) (map[string]chat.ReadState, error) {
	names, err := json.Marshal(rooms)
	if err != nil {
		return nil, fmt.Errorf("room reads: %w", err)
	}
	rows, err := s.read.QueryContext(ctx, `SELECT f.room, f.read,
		(SELECT count(*) FROM (SELECT 1 FROM events e WHERE e.room = f.room AND e.id > f.read AND e.kind = 'message' AND e.sender <> ?1 LIMIT `+unreadLimit+`) capped)
	FROM (SELECT m.room, max(m.join_id, COALESCE(r.read_id, 0)) AS read
		FROM memberships m LEFT JOIN read_markers r ON r.username = m.username AND r.scope = 'room:' || m.room
		WHERE m.username = ?1 AND m.leave_id IS NULL AND m.room IN (SELECT value FROM json_each(?2))) f`,
		user, string(names))
	if err != nil {
		return nil, fmt.Errorf("room reads: %w", err)
	}
	out := make(map[string]chat.ReadState)
	for rows.Next() {
		var room string
		var st chat.ReadState
		if err := rows.Scan(&room, &st.Read, &st.Unread); err != nil {
			rows.Close()
			return nil, fmt.Errorf("room reads: %w", err)
		}
		out[room] = st
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("room reads: %w", err)
	}
	return out, nil
}

// ConversationRead returns how far user has read the conversation with
// with (0: never marked) and how many of with's messages to user came
// after that: a range of the events_private_sender index from read on.
func (s *Store) ConversationRead(ctx context.Context, user, with string) (chat.ReadState, error) {
	var st chat.ReadState
	err := s.read.QueryRowContext(ctx, `SELECT f.read,
		(SELECT count(*) FROM (SELECT 1 FROM events e WHERE e.kind = 'private' AND e.sender = ?2 AND e.recipient = ?1
			AND e.sender <> e.recipient AND e.id > f.read LIMIT `+unreadLimit+`) capped)
	FROM (SELECT COALESCE((SELECT read_id FROM read_markers WHERE username = ?1 AND scope = ?3), 0) AS read) f`,
		user, with, chat.ReadScope("", with)).Scan(&st.Read, &st.Unread)
	if err != nil {
		return st, fmt.Errorf("conversation read: %w", err)
	}
	return st, nil
}

// unreadLimit caps every unread count at chat.MaxUnread.
var unreadLimit = strconv.Itoa(chat.MaxUnread)
