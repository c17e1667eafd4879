package auth

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/ssechat/ssechat/chat"
	"github.com/ssechat/ssechat/cluster"
	"github.com/ssechat/ssechat/store/sqlite"
)

// countingStore is the real SQLite store, counting the session reads the
// cache did not spare.
type countingStore struct {
	*sqlite.Store
	reads atomic.Int64
}

func (s *countingStore) Session(ctx context.Context, tokenHash []byte) (chat.Session, error) {
	s.reads.Add(1)
	return s.Store.Session(ctx, tokenHash)
}

// The session cache spares the store its reads, stays within its bound,
// and a session still answers correctly after the cache was emptied.
func TestSessionCacheIsBounded(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "auth.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store := &countingStore{Store: db}
	s := New(store, cluster.NewLocal(), 4)
	s.maxCached = 2

	tokens := map[string]string{}
	for _, name := range []string{"alice", "bob", "carol"} {
		token, _, err := s.Login(ctx, name, "secret-"+name)
		if err != nil {
			t.Fatal(err)
		}
		tokens[name] = token
	}
	auth := func(name string, wantReads int64) {
		t.Helper()
		user, _, err := s.Authenticate(ctx, tokens[name])
		if err != nil || user != name {
			t.Fatalf("Authenticate(%s's token) = %q, %v", name, user, err)
		}
		if got := store.reads.Load(); got != wantReads {
			t.Fatalf("after %s: %d session reads from the store, want %d", name, got, wantReads)
		}
		if n := s.cached.Load(); n > s.maxCached {
			t.Fatalf("%d sessions cached, bound %d", n, s.maxCached)
		}
	}
	auth("alice", 1)
	auth("bob", 2)
	auth("alice", 2) // cached
	auth("carol", 3) // the third: the cache is emptied
	auth("alice", 4) // read again, and right
	auth("alice", 4)

	if err := s.Logout(ctx, tokens["alice"]); err != nil {
		t.Fatal(err)
	}
	if n := s.cached.Load(); n != 0 {
		t.Fatalf("%d sessions cached after alice's logout, want 0", n)
	}
	if _, _, err := s.Authenticate(ctx, tokens["alice"]); err == nil {
		t.Fatal("alice's token still works after logout")
	}
}
