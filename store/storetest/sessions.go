package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ssechat/ssechat/chat"
)

// The session contract: a session is stored under its token's hash with
// the time it was opened and the time it was last recorded in use
// (millisecond precision); Session reads it back or answers
// chat.EUNAUTHORIZED, and never judges expiry (auth does);
// TouchSession only moves the last use forward and never brings a deleted
// session back; DeleteUserSessions and PruneSessions return the hashes
// they deleted, so that the caller can end those sessions everywhere.

func mustSession(t *testing.T, s Store, key string) chat.Session {
	t.Helper()
	sess, err := s.Session(context.Background(), []byte(key))
	if err != nil {
		t.Fatalf("Session(%s): %v", key, err)
	}
	return sess
}

func mustCreateSession(t *testing.T, s Store, key, user string, at time.Time) {
	t.Helper()
	if err := s.CreateSession(context.Background(), []byte(key), user, at); err != nil {
		t.Fatalf("CreateSession(%s): %v", key, err)
	}
}

func wantGone(t *testing.T, s Store, key string) {
	t.Helper()
	if _, err := s.Session(context.Background(), []byte(key)); chat.ErrorCode(err) != chat.EUNAUTHORIZED {
		t.Fatalf("session %s: %v, want unauthorized", key, err)
	}
}

func keyStrings(keys [][]byte) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = string(k)
	}
	slices.Sort(out)
	return out
}

func testSessions(t *testing.T, s Store) {
	ctx := context.Background()
	opened := ts.Add(123 * time.Millisecond)
	mustCreateSession(t, s, "h1", "alice", opened)
	sess := mustSession(t, s, "h1")
	if sess.User != "alice" || !sess.Created.Equal(opened) || !sess.LastUsed.Equal(opened) {
		t.Fatalf("Session = %+v, want alice opened and last used at %v", sess, opened)
	}
	// Session does not judge expiry: a session unused for years still reads.
	mustCreateSession(t, s, "old", "alice", ts.AddDate(-5, 0, 0))
	if sess := mustSession(t, s, "old"); !sess.LastUsed.Equal(ts.AddDate(-5, 0, 0)) {
		t.Fatalf("old session last used %v", sess.LastUsed)
	}
	if err := s.DeleteSession(ctx, []byte("h1")); err != nil {
		t.Fatal(err)
	}
	wantGone(t, s, "h1")
	if err := s.DeleteSession(ctx, []byte("h1")); err != nil {
		t.Fatalf("deleting a deleted session: %v", err)
	}
	wantGone(t, s, "never")
}

func testTouchSession(t *testing.T, s Store) {
	ctx := context.Background()
	mustCreateSession(t, s, "h1", "alice", ts)
	later := ts.Add(2 * time.Hour)
	if err := s.TouchSession(ctx, []byte("h1"), later); err != nil {
		t.Fatal(err)
	}
	sess := mustSession(t, s, "h1")
	if !sess.LastUsed.Equal(later) || !sess.Created.Equal(ts) {
		t.Fatalf("after a touch: %+v, want created %v, last used %v", sess, ts, later)
	}
	// Another instance's older news does not move it back.
	if err := s.TouchSession(ctx, []byte("h1"), ts.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if sess := mustSession(t, s, "h1"); !sess.LastUsed.Equal(later) {
		t.Fatalf("an older touch moved the last use to %v", sess.LastUsed)
	}
	// A touch racing a logout must not bring the session back.
	if err := s.DeleteSession(ctx, []byte("h1")); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchSession(ctx, []byte("h1"), later.Add(time.Hour)); err != nil {
		t.Fatalf("touching a deleted session: %v", err)
	}
	wantGone(t, s, "h1")
}

func testDeleteUserSessions(t *testing.T, s Store) {
	ctx := context.Background()
	for _, k := range []string{"a1", "a2", "a3"} {
		mustCreateSession(t, s, k, "Alice", ts)
	}
	mustCreateSession(t, s, "b1", "bob", ts)
	keys, err := s.DeleteUserSessions(ctx, "Alice")
	if err != nil {
		t.Fatal(err)
	}
	if got := keyStrings(keys); !slices.Equal(got, []string{"a1", "a2", "a3"}) {
		t.Fatalf("DeleteUserSessions(Alice) = %v, want a1 a2 a3", got)
	}
	for _, k := range []string{"a1", "a2", "a3"} {
		wantGone(t, s, k)
	}
	if sess := mustSession(t, s, "b1"); sess.User != "bob" {
		t.Fatalf("bob's session: %+v", sess)
	}
	keys, err = s.DeleteUserSessions(ctx, "Alice")
	if err != nil || len(keys) != 0 {
		t.Fatalf("second DeleteUserSessions(Alice) = %v, %v; want none", keyStrings(keys), err)
	}
}

func testPruneSessions(t *testing.T, s Store) {
	ctx := context.Background()
	cutoff := ts
	var old []string
	for i := range 7 {
		k := fmt.Sprintf("old%d", i)
		old = append(old, k)
		mustCreateSession(t, s, k, "alice", cutoff.Add(-time.Duration(i+1)*time.Minute))
	}
	mustCreateSession(t, s, "fresh", "alice", cutoff.Add(time.Minute))
	mustCreateSession(t, s, "edge", "alice", cutoff) // used at the cutoff: not before it
	// Opened long ago, but used since: kept.
	mustCreateSession(t, s, "touched", "bob", cutoff.Add(-time.Hour))
	if err := s.TouchSession(ctx, []byte("touched"), cutoff.Add(time.Second)); err != nil {
		t.Fatal(err)
	}

	var pruned []string
	for round := 0; ; round++ {
		keys, err := s.PruneSessions(ctx, cutoff, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) > 3 {
			t.Fatalf("a batch of limit 3 deleted %d", len(keys))
		}
		pruned = append(pruned, keyStrings(keys)...)
		if len(keys) < 3 {
			break
		}
		if round > 5 {
			t.Fatal("PruneSessions never ran out")
		}
	}
	slices.Sort(pruned)
	if !slices.Equal(pruned, old) {
		t.Fatalf("pruned %v, want %v", pruned, old)
	}
	for _, k := range old {
		wantGone(t, s, k)
	}
	for _, k := range []string{"fresh", "edge", "touched"} {
		mustSession(t, s, k)
	}
}
