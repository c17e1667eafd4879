package postgres

import (
	"context"
	"io/fs"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/ssechat/ssechat/internal/pgtest"
)

// A database made before sessions expired keeps its sessions through the
// upgrade, each counted as used at the upgrade, so that nobody is logged
// out by it and each lives its full TTL from then on.
func TestSessionExpiryMigrationKeepsSessions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	url := pgtest.FreshSchema(t, pgtest.URL(t))
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	dir, _ := fs.Sub(migrations, "migrations")
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, dir, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	opened := time.Now().AddDate(-1, 0, 0).UnixMilli()
	if _, err := pool.Exec(ctx, `INSERT INTO sessions (token_hash, username, created_ms) VALUES ($1, $2, $3)`,
		[]byte("old"), "alice", opened); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	s := openAt(t, url)
	sess, err := s.Session(ctx, []byte("old"))
	if err != nil {
		t.Fatal(err)
	}
	if sess.User != "alice" || sess.Created.UnixMilli() != opened || sess.LastUsed.Before(before) {
		t.Fatalf("after the upgrade: %+v; want alice, opened a year ago, last used at the upgrade", sess)
	}
	if err := s.CreateSession(ctx, []byte("new"), "bob", time.Now()); err != nil {
		t.Fatalf("a session after the upgrade: %v", err)
	}
}
