package postgres_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/ssechat/ssechat/chat"
	"github.com/ssechat/ssechat/internal/pgtest"
)

// While the database is down, calls fail soon with chat.EUNAVAILABLE; an
// append cut off in the middle leaves nothing behind; once the database is
// back, the same Store appends again, the ids going on where the last
// commit left them.
func TestOutage(t *testing.T) {
	url, stop, start := pgtest.Start(t)
	s := openURL(t, url)
	ctx := context.Background()
	token := []byte("token hash")
	if err := s.CreateSession(ctx, token, "alice", time.Now()); err != nil {
		t.Fatal(err)
	}
	messages := func(n int) func(int64, []chat.Event) ([]chat.Event, error) {
		return func(int64, []chat.Event) ([]chat.Event, error) {
			events := make([]chat.Event, n)
			for i := range events {
				events[i] = chat.Event{Kind: chat.KindMessage, Room: "lobby", From: "alice", Text: "hi", TS: time.Now()}
			}
			return events, nil
		}
	}
	if out, err := s.Append(ctx, math.MaxInt64, messages(2)); err != nil || out[1].ID != 2 {
		t.Fatalf("append before the outage: %v", err)
	}
	wantUnavailable := func(what string, call func(ctx context.Context) error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		began := time.Now()
		err := call(ctx)
		var ce *chat.Error
		if !errors.As(err, &ce) || ce.Code != chat.EUNAVAILABLE || ce.Message != "database unavailable" || ce.Err == nil {
			t.Fatalf("%s with the database down: %v; want %s with the cause", what, err, chat.EUNAVAILABLE)
		}
		if took := time.Since(began); took > 5*time.Second {
			t.Fatalf("%s took %v to fail", what, took)
		}
		t.Logf("%s: %v (after %v)", what, err, time.Since(began).Round(time.Millisecond))
	}

	// The server dies while the append holds the log: nothing of it stays.
	wantUnavailable("an append cut off in the middle", func(ctx context.Context) error {
		_, err := s.Append(ctx, math.MaxInt64, func(int64, []chat.Event) ([]chat.Event, error) {
			stop()
			return []chat.Event{{Kind: chat.KindJoin, Room: "den", User: "alice", TS: time.Now()}}, nil
		})
		return err
	})
	wantUnavailable("append", func(ctx context.Context) error {
		_, err := s.Append(ctx, math.MaxInt64, messages(1))
		return err
	})
	wantUnavailable("session lookup", func(ctx context.Context) error {
		_, err := s.Session(ctx, token)
		return err
	})

	start()
	deadline := time.Now().Add(10 * time.Second)
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		out, err := s.Append(actx, math.MaxInt64, messages(2))
		cancel()
		if err == nil {
			if out[0].ID != 3 {
				t.Fatalf("first id after the outage %d, want 3", out[0].ID)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("append still fails after the database came back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if sess, err := s.Session(ctx, token); err != nil || sess.User != "alice" {
		t.Fatalf("session after the outage: %+v, %v", sess, err)
	}
	tail, err := s.Tail(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range tail {
		if e.ID != int64(i)+1 || e.Kind != chat.KindMessage {
			t.Fatalf("log after the outage: event %d is %+v", i, e)
		}
	}
	if len(tail) != 4 {
		t.Fatalf("log after the outage holds %d events, want 4", len(tail))
	}
	if snap, err := s.Snapshot(ctx); err != nil || len(snap.Members) != 0 || len(snap.Rooms) != 0 {
		t.Fatalf("the cut-off join left %+v (%v)", snap, err)
	}
}
