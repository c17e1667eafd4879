package sqlite

import (
	"context"
	"database/sql"
	"math"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ssechat/ssechat/chat"
)

// The retention behaviour every backend shares is in storetest; these
// tests look at what only this backend has: its pragmas and its tables.

func open(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "chat.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func appendAt(t *testing.T, s *Store, ts time.Time, events ...chat.Event) {
	t.Helper()
	for i := range events {
		events[i].TS = ts
	}
	if _, err := s.Append(context.Background(), math.MaxInt64, func(int64, []chat.Event) ([]chat.Event, error) { return events, nil }); err != nil {
		t.Fatal(err)
	}
}

// periods lists the membership periods as "user open|closed", by user.
func periods(t *testing.T, s *Store) []string {
	t.Helper()
	rows, err := s.read.Query(`SELECT username, leave_id IS NULL FROM memberships ORDER BY username, join_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var user string
		var open bool
		if err := rows.Scan(&user, &open); err != nil {
			t.Fatal(err)
		}
		state := "closed"
		if open {
			state = "open"
		}
		out = append(out, user+" "+state)
	}
	return out
}

// Open makes every connection durable: WAL, and a commit that is synced
// before it returns (synchronous=FULL, 2), on the writer and the readers.
func TestOpenIsCrashSafe(t *testing.T) {
	s := open(t)
	for name, db := range map[string]*sql.DB{"write": s.write, "read": s.read} {
		var mode string
		var synchronous int
		if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(`PRAGMA synchronous`).Scan(&synchronous); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || synchronous != 2 {
			t.Errorf("%s pool: journal_mode %s, synchronous %d; want wal and 2 (FULL)", name, mode, synchronous)
		}
	}
}

// Pruning deletes the membership periods that ended among the pruned
// events (no resume can need them) and keeps the others.
func TestPruneDeletesEndedMembershipPeriods(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	old := time.Now().Add(-2 * time.Hour)
	msg := chat.Event{Kind: chat.KindMessage, Room: "lobby", From: "alice", Text: "hi"}
	appendAt(t, s, old,
		chat.Event{Kind: chat.KindJoin, Room: "lobby", User: "alice"},
		chat.Event{Kind: chat.KindJoin, Room: "lobby", User: "bob"},
		chat.Event{Kind: chat.KindLeave, Room: "lobby", User: "bob"},
		chat.Event{Kind: chat.KindJoin, Room: "lobby", User: "carol"},
		msg)
	appendAt(t, s, time.Now(), msg, chat.Event{Kind: chat.KindLeave, Room: "lobby", User: "carol"})
	if n, err := s.Prune(ctx, time.Now().Add(-time.Hour)); err != nil || n != 5 {
		t.Fatalf("pruned %d (%v), want 5", n, err)
	}
	if got := periods(t, s); !slices.Equal(got, []string{"alice open", "carol closed"}) {
		t.Fatalf("membership periods after pruning: %v", got)
	}
}
