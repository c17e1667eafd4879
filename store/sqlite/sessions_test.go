package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ssechat/ssechat/store/sqlite"
)

// A file made before sessions expired keeps its sessions through the
// upgrade, each counted as used at the upgrade, so that nobody is logged
// out by it and each lives its full TTL from then on.
func TestSessionExpiryUpgradeKeepsSessions(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	opened := time.Now().AddDate(-1, 0, 0).UnixMilli()
	for _, q := range []string{
		`CREATE TABLE sessions (token_hash BLOB PRIMARY KEY, username TEXT NOT NULL, created_ms INTEGER NOT NULL)`,
		`INSERT INTO sessions VALUES (x'6f6c64', 'alice', ` + itoa(opened) + `)`,
	} {
		if _, err := old.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()

	before := time.Now().Add(-time.Second)
	for range 2 { // and a second open finds nothing left to do
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		sess, err := s.Session(ctx, []byte("old"))
		if err != nil {
			t.Fatal(err)
		}
		if sess.User != "alice" || sess.Created.UnixMilli() != opened || sess.LastUsed.Before(before) {
			t.Fatalf("after the upgrade: %+v; want alice, opened a year ago, last used at the upgrade", sess)
		}
		if err := s.CreateSession(ctx, []byte("new"+itoa(time.Now().UnixNano())), "bob", time.Now()); err != nil {
			t.Fatalf("a session after the upgrade: %v", err)
		}
		s.Close()
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
