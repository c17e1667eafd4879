package sqlite_test

import (
	"context"
	"database/sql"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/ssechat/ssechat/chat"
	"github.com/ssechat/ssechat/store/sqlite"
)

// A file made before read markers keeps its log through the upgrade and
// then takes read events like a new one.
func TestReadMarkersUpgradeKeepsTheLog(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, room TEXT, sender TEXT,
			recipient TEXT, subject TEXT, text TEXT, status TEXT, members INTEGER, online INTEGER, ts_ms INTEGER NOT NULL)`,
		`CREATE TABLE memberships (username TEXT NOT NULL, room TEXT NOT NULL, join_id INTEGER NOT NULL,
			leave_id INTEGER, PRIMARY KEY (username, room, join_id))`,
		`INSERT INTO events (kind, room, subject, ts_ms) VALUES ('join', 'lobby', 'alice', 1)`,
		`INSERT INTO events (kind, room, sender, text, ts_ms) VALUES ('message', 'lobby', 'bob', 'old', 2)`,
		`INSERT INTO memberships VALUES ('alice', 'lobby', 1, NULL)`,
	} {
		if _, err := old.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()

	for i := range 2 { // and a second open finds nothing left to do
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if log, err := s.Tail(ctx, 0, 10); err != nil || len(log) != 2+i || log[1].Text != "old" {
			t.Fatalf("the log after the upgrade: %+v, %v", log, err)
		}
		if i == 0 {
			_, err := s.Append(ctx, math.MaxInt64, func(int64, []chat.Event) ([]chat.Event, error) {
				return []chat.Event{{Kind: chat.KindRead, User: "alice", Room: "lobby", Read: 2, TS: time.Now()}}, nil
			})
			if err != nil {
				t.Fatalf("a read event after the upgrade: %v", err)
			}
		}
		reads, err := s.RoomReads(ctx, "alice", []string{"lobby"})
		if err != nil || reads["lobby"] != (chat.ReadState{Read: 2}) {
			t.Fatalf("alice's lobby after the upgrade: %+v, %v", reads, err)
		}
		if log, err := s.Tail(ctx, 2, 10); err != nil || len(log) != 1 || log[0].Room != "lobby" || log[0].To != "" || log[0].Read != 2 {
			t.Fatalf("the read event read back: %+v, %v", log, err)
		}
		s.Close()
	}

	// A read event stays out of the room's rows (and so out of
	// events_room, which history, resume and unread counts walk).
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var inRoom int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE kind = 'read' AND room IS NOT NULL`).Scan(&inRoom); err != nil || inRoom != 0 {
		t.Fatalf("%d read events in the room column (%v), want none", inRoom, err)
	}
}
