package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ssechat/ssechat/chat"
	"github.com/ssechat/ssechat/internal/pgtest"
)

// The behaviour every backend shares is in storetest; these tests look at
// what only this backend has.

func openAt(t *testing.T, url string) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func appendAt(t *testing.T, s *Store, ts time.Time, events ...chat.Event) []chat.Event {
	t.Helper()
	for i := range events {
		events[i].TS = ts
	}
	out, err := s.Append(context.Background(), math.MaxInt64, func(int64, []chat.Event) ([]chat.Event, error) { return events, nil })
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Pruning deletes the membership periods that ended among the pruned
// events (no resume can need them) and keeps the others.
func TestPruneDeletesEndedMembershipPeriods(t *testing.T) {
	ctx := context.Background()
	s := openAt(t, pgtest.FreshSchema(t, pgtest.URL(t)))
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
	rows, _ := s.pool.Query(ctx, `SELECT username || CASE WHEN leave_id IS NULL THEN ' open' ELSE ' closed' END
		FROM memberships ORDER BY username, join_id`)
	var got []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"alice open", "carol closed"}) {
		t.Fatalf("membership periods after pruning: %v", got)
	}
}

// An instance that stalls while it holds the log's lock (here a prepare
// that takes too long; a frozen process or a cut cable alike) loses its
// append, and the other instances go on appending meanwhile.
func TestStalledAppendFreesTheLog(t *testing.T) {
	url := pgtest.FreshSchema(t, pgtest.URL(t))
	stalled, other := openAt(t, url), openAt(t, url)
	stalled.lockTimeoutSQL = lockTimeoutSQL(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msg := chat.Event{Kind: chat.KindMessage, Room: "lobby", From: "alice", Text: "hi"}
	appendAt(t, other, time.Now(), msg)

	locked := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := stalled.Append(ctx, math.MaxInt64, func(int64, []chat.Event) ([]chat.Event, error) {
			close(locked)
			time.Sleep(2 * time.Second)
			return []chat.Event{msg}, nil
		})
		done <- err
	}()
	<-locked
	began := time.Now()
	out := appendAt(t, other, time.Now(), msg)
	if took := time.Since(began); took > 1500*time.Millisecond {
		t.Fatalf("the other instance waited %v for the log", took)
	}
	if out[0].ID != 2 {
		t.Fatalf("the other instance appended id %d, want 2", out[0].ID)
	}
	err := <-done
	if chat.ErrorCode(err) != chat.EUNAVAILABLE {
		t.Fatalf("the stalled append returned %v, want %s", err, chat.EUNAVAILABLE)
	}
	t.Logf("stalled append: %v", err)
	if out := appendAt(t, stalled, time.Now(), msg); out[0].ID != 3 {
		t.Fatalf("the stalled instance appends id %d next, want 3", out[0].ID)
	}
}

// Only an error that says the server is out of reach is EUNAVAILABLE; an
// answer from the server about the statement is not.
func TestUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{fmt.Errorf("query: %w", context.DeadlineExceeded), true},
		{&pgconn.ConnectError{}, true},
		{&pgconn.PgError{Code: "57P01"}, true}, // admin shutdown
		{&pgconn.PgError{Code: "08006"}, true}, // connection failure
		{&pgconn.PgError{Code: "23505"}, false},
		{&pgconn.PgError{Code: "42P01"}, false},
		{context.Canceled, false},
		{pgx.ErrNoRows, false},
		{errors.New("scan: wrong type"), false},
	} {
		err := wrap("op", tc.err)
		if got := chat.ErrorCode(err) == chat.EUNAVAILABLE; got != tc.want {
			t.Errorf("%#v: unavailable %v, want %v", tc.err, got, tc.want)
		}
		if !errors.Is(err, tc.err) {
			t.Errorf("%#v: wrapped error hides its cause", tc.err)
		}
	}
}
