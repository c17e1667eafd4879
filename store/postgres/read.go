package postgres

import (
	"context"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/ssechat/ssechat/chat"
)

// moveReadMarkerSQL runs in the appending transaction of a read event:
// a marker never goes backwards, whatever the broker decided.
const moveReadMarkerSQL = `INSERT INTO read_markers (username, scope, read_id) VALUES ($1, $2, $3)
	ON CONFLICT (username, scope) DO UPDATE SET read_id = GREATEST(read_markers.read_id, excluded.read_id)`

// ReadFloors returns, for each key, how far its user has read: the stored
// marker or, for a room, the join of their current membership if that is
// later (everything before it was never theirs to read); 0 if neither.
// The broker calls it under the log's lock, which every marker's writer
// holds: a READ COMMITTED read on another connection sees them all. One
// round trip for the whole batch, since the lock is held meanwhile.
func (s *Store) ReadFloors(ctx context.Context, keys []chat.ReadKey) ([]int64, error) {
	users, scopes, rooms := make([]string, len(keys)), make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		users[i], scopes[i], rooms[i] = k.User, chat.ReadScope(k.Room, k.With), k.Room
	}
	rows, _ := s.pool.Query(ctx, `SELECT GREATEST(
		COALESCE((SELECT r.read_id FROM read_markers r WHERE r.username = k.username AND r.scope = k.scope), 0),
		COALESCE((SELECT max(m.join_id) FROM memberships m
			WHERE m.username = k.username AND m.room = k.room AND m.leave_id IS NULL), 0))
	FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS k(username, scope, room, i)
	ORDER BY k.i`, users, scopes, rooms)
	out, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, wrap("read floors", err)
	}
	return out, nil
}

// ReadTarget returns the log's head and where a mark of id moves key's
// marker: the newest message at or below id of the room (anyone's) or of
// the conversation (either way), 0 if none. Both are read in one
// statement, one snapshot, so if id is at most the head, no message at or
// below id can commit later. Each message is a backward range of one index
// from id: events_room, or events_private_sender for each way.
func (s *Store) ReadTarget(ctx context.Context, key chat.ReadKey, id int64) (target, head int64, err error) {
	query, args := `SELECT (SELECT id FROM log_head),
		COALESCE((SELECT id FROM events WHERE room = $2 AND kind = 'message' AND id <= $1 ORDER BY id DESC LIMIT 1), 0)`,
		[]any{id, key.Room}
	if key.Room == "" {
		query, args = `SELECT (SELECT id FROM log_head), GREATEST(
			COALESCE((SELECT id FROM events WHERE kind = 'private' AND sender = $2 AND recipient = $3 AND id <= $1 ORDER BY id DESC LIMIT 1), 0),
			COALESCE((SELECT id FROM events WHERE kind = 'private' AND sender = $3 AND recipient = $2 AND id <= $1 ORDER BY id DESC LIMIT 1), 0))`,
			[]any{id, key.User, key.With}
	}
	if err := s.pool.QueryRow(ctx, query, args...).Scan(&head, &target); err != nil {
		return 0, 0, wrap("read target", err)
	}
	return target, head, nil
}

// RoomReads returns how far user has read each of rooms they are a member
// of now (the others are left out) and how many messages others wrote to
// it since: read is the later of their marker and their join. One query;
// each count is a range of the events_room index from read on.
func (s *Store) RoomReads(ctx context.Context, user string, rooms []string) (map[string]chat.ReadState, error) {
	rows, _ := s.pool.Query(ctx, `SELECT f.room, f.read,
		(SELECT count(*) FROM (SELECT 1 FROM events e WHERE e.room = f.room AND e.id > f.read AND e.kind = 'message' AND e.sender <> $1 LIMIT `+unreadLimit+`) capped)
	FROM (SELECT m.room, GREATEST(m.join_id, COALESCE(r.read_id, 0)) AS read
		FROM memberships m LEFT JOIN read_markers r ON r.username = m.username AND r.scope = 'room:' || m.room
		WHERE m.username = $1 AND m.leave_id IS NULL AND m.room = ANY($2::text[])) AS f`, user, rooms)
	out := make(map[string]chat.ReadState)
	var room string
	var st chat.ReadState
	_, err := pgx.ForEachRow(rows, []any{&room, &st.Read, &st.Unread}, func() error {
		out[room] = st
		return nil
	})
	if err != nil {
		return nil, wrap("room reads", err)
	}
	return out, nil
}

// ConversationRead returns how far user has read the conversation with
// with (0: never marked) and how many of with's messages to user came
// after that: a range of the events_private_sender index from read on.
func (s *Store) ConversationRead(ctx context.Context, user, with string) (chat.ReadState, error) {
	var st chat.ReadState
	err := s.pool.QueryRow(ctx, `SELECT f.read,
		(SELECT count(*) FROM (SELECT 1 FROM events e WHERE e.kind = 'private' AND e.sender = $2 AND e.recipient = $1
			AND e.sender <> e.recipient AND e.id > f.read LIMIT `+unreadLimit+`) capped)
	FROM (SELECT COALESCE((SELECT read_id FROM read_markers WHERE username = $1 AND scope = $3), 0) AS read) AS f`,
		user, with, chat.ReadScope("", with)).Scan(&st.Read, &st.Unread)
	if err != nil {
		return st, wrap("conversation read", err)
	}
	return st, nil
}

// unreadLimit caps every unread count at chat.MaxUnread.
var unreadLimit = strconv.Itoa(chat.MaxUnread)
