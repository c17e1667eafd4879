package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ssechat/ssechat/chat"
)

// appendWith appends through prepare and fails the test on an error.
func appendWith(t *testing.T, s Store, prepare func(head int64, _ []chat.Event) ([]chat.Event, error)) []chat.Event {
	t.Helper()
	out, err := s.Append(context.Background(), math.MaxInt64, prepare)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return out
}

// wantIDs fails unless events carry the ids from+1 … from+n.
func wantIDs(t *testing.T, what string, events []chat.Event, from int64, n int) {
	t.Helper()
	want := make([]int64, n)
	for i := range want {
		want[i] = from + int64(i) + 1
	}
	if !slices.Equal(ids(events), want) {
		t.Fatalf("%s: ids %v, want %v", what, ids(events), want)
	}
}

// Append hands prepare the head under the log's lock and numbers what it
// returns from there; an error or nothing to write leaves the log as it was.
func testAppendHead(t *testing.T, s Store) {
	ctx := context.Background()
	calls := 0
	got := appendWith(t, s, func(head int64, _ []chat.Event) ([]chat.Event, error) {
		calls++
		if head != 0 {
			t.Errorf("prepare on an empty log got head %d", head)
		}
		return []chat.Event{join("alice", "lobby"), say("alice", "lobby", "one"), say("alice", "lobby", "two")}, nil
	})
	if calls != 1 {
		t.Fatalf("prepare called %d times, want once", calls)
	}
	wantIDs(t, "first append", got, 0, 3)
	if got[1].Kind != chat.KindMessage || got[1].Text != "one" || got[1].Room != "lobby" {
		t.Fatalf("append returned %+v", got[1])
	}

	got = appendWith(t, s, func(head int64, _ []chat.Event) ([]chat.Event, error) {
		if head != 3 {
			t.Errorf("prepare after 3 events got head %d", head)
		}
		return []chat.Event{say("alice", "lobby", "three"), pm("alice", "bob", "four")}, nil
	})
	wantIDs(t, "second append", got, 3, 2)

	// A failing prepare aborts: its error comes back as it is, and nothing
	// (no event, no membership) is written.
	boom := errors.New("boom")
	calls = 0
	out, err := s.Append(ctx, math.MaxInt64, func(head int64, _ []chat.Event) ([]chat.Event, error) {
		calls++
		if head != 5 {
			t.Errorf("prepare after 5 events got head %d", head)
		}
		return []chat.Event{join("bob", "den")}, boom
	})
	if err != boom || out != nil || calls != 1 {
		t.Fatalf("failing prepare: %v, %v after %d calls; want boom, nil after 1", out, err, calls)
	}
	// newer is every event above after, up to the head, in order.
	out, err = s.Append(ctx, 2, func(head int64, newer []chat.Event) ([]chat.Event, error) {
		if want := []int64{3, 4, 5}; !slices.Equal(ids(newer), want) {
			t.Errorf("newer after 2: %v, want %v", ids(newer), want)
		}
		if len(newer) == 3 && (newer[1].Text != "three" || newer[2].To != "bob") {
			t.Errorf("newer read back as %+v", newer)
		}
		return nil, nil
	})
	if err != nil || out != nil {
		t.Fatalf("reading newer: %v, %v", out, err)
	}
	// Nothing to write commits nothing.
	out, err = s.Append(ctx, math.MaxInt64, func(head int64, _ []chat.Event) ([]chat.Event, error) {
		if head != 5 {
			t.Errorf("prepare after an aborted append got head %d, want 5", head)
		}
		return nil, nil
	})
	if err != nil || out != nil {
		t.Fatalf("empty append: %v, %v; want nil, nil", out, err)
	}
	if head, err := s.Head(ctx); err != nil || head != 5 {
		t.Fatalf("head %d (%v) after an aborted and an empty append, want 5", head, err)
	}
	if tail, err := s.Tail(ctx, 0, 100); err != nil || len(tail) != 5 {
		t.Fatalf("tail after an aborted append: %v, %v; want the 5 events", ids(tail), err)
	}
	snap, err := s.Snapshot(ctx)
	if err != nil || slices.Contains(snap.Rooms, "den") || len(snap.Members) != 1 {
		t.Fatalf("aborted join left rooms %v members %v (%v)", snap.Rooms, snap.Members, err)
	}

	// The ids given back are the next append's.
	got = appendWith(t, s, func(head int64, _ []chat.Event) ([]chat.Event, error) {
		if head != 5 {
			t.Errorf("prepare got head %d, want 5", head)
		}
		return []chat.Event{join("bob", "den")}, nil
	})
	wantIDs(t, "append after an abort", got, 5, 1)
}

// Appends from many goroutines are serialised: each prepare sees the
// previous commit's head, the ids tile 1..N with no gap or duplicate, and
// Tail reads exactly them back.
func testAppendConcurrent(t *testing.T, s Store) {
	ctx := context.Background()
	const writers, appends = 8, 25
	type batch struct {
		head int64
		n    int
	}
	var (
		mu      sync.Mutex
		batches []batch
		texts   = map[int64]string{}
		wg      sync.WaitGroup
	)
	errc := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range appends {
				n := 1 + (w+i)%3
				var seen int64
				out, err := s.Append(ctx, math.MaxInt64, func(head int64, _ []chat.Event) ([]chat.Event, error) {
					seen = head
					events := make([]chat.Event, n)
					for j := range events {
						events[j] = say(fmt.Sprintf("w%d", w), "lobby", fmt.Sprintf("%d/%d/%d", w, i, j))
						events[j].TS = ts
					}
					return events, nil
				})
				if err != nil {
					errc <- err
					return
				}
				for j, e := range out {
					if e.ID != seen+int64(j)+1 {
						errc <- fmt.Errorf("prepare saw head %d, but event %d got id %d", seen, j, e.ID)
						return
					}
				}
				mu.Lock()
				batches = append(batches, batch{seen, n})
				for _, e := range out {
					texts[e.ID] = e.Text
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	slices.SortFunc(batches, func(a, b batch) int { return int(a.head - b.head) })
	var next int64
	for _, b := range batches {
		if b.head != next {
			t.Fatalf("a prepare saw head %d where the previous commit ended at %d", b.head, next)
		}
		next += int64(b.n)
	}
	if head, err := s.Head(ctx); err != nil || head != next {
		t.Fatalf("head %d (%v), want %d", head, err, next)
	}
	tail, err := s.Tail(ctx, 0, int(next)+10)
	if err != nil {
		t.Fatal(err)
	}
	wantIDs(t, "tail after concurrent appends", tail, 0, int(next))
	for _, e := range tail {
		if texts[e.ID] != e.Text {
			t.Fatalf("tail has %q at %d, append returned %q", e.Text, e.ID, texts[e.ID])
		}
	}
}

// Tail is the whole log in id order, every kind, whoever wrote it.
func testTail(t *testing.T, s Store) {
	ctx := context.Background()
	if tail, err := s.Tail(ctx, 0, 10); err != nil || len(tail) != 0 {
		t.Fatalf("tail of an empty log: %v, %v", tail, err)
	}
	written := mustAppend(t, s,
		join("alice", "lobby"),
		say("alice", "lobby", "hello"),
		pm("alice", "bob", "psst"),
		chat.Event{Kind: chat.KindPresence, User: "alice", Status: chat.Online},
		chat.Event{Kind: chat.KindMembers, Room: "lobby", Members: 1200, Online: 0},
		leave("alice", "lobby"),
	)
	written = append(written, mustAppend(t, s, say("carol", "den", "elsewhere"))...)
	tail, err := s.Tail(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(tail) != len(written) {
		t.Fatalf("tail has %d events, want %d", len(tail), len(written))
	}
	for i := range tail {
		if !tail[i].TS.Equal(written[i].TS) {
			t.Fatalf("event %d read back at %v, written at %v", i, tail[i].TS, written[i].TS)
		}
		tail[i].TS = written[i].TS
		if tail[i] != written[i] {
			t.Fatalf("event %d read back as %+v, written as %+v", i, tail[i], written[i])
		}
	}
	got, err := s.Tail(ctx, written[1].ID, 2)
	if err != nil || !slices.Equal(ids(got), ids(written[2:4])) {
		t.Fatalf("Tail(after %d, limit 2) = %v (%v), want %v", written[1].ID, ids(got), err, ids(written[2:4]))
	}
	if got, err := s.Tail(ctx, written[len(written)-1].ID, 10); err != nil || len(got) != 0 {
		t.Fatalf("tail after the head: %v, %v", ids(got), err)
	}
}

// Snapshot reads the head, the rooms and the open memberships as of one
// moment, even while joins and leaves commit: replaying the log up to its
// head gives exactly its rooms and members.
func testSnapshot(t *testing.T, s Store) {
	ctx := context.Background()
	if snap, err := s.Snapshot(ctx); err != nil || snap.Head != 0 || len(snap.Rooms) != 0 || len(snap.Members) != 0 {
		t.Fatalf("snapshot of an empty store: %+v, %v", snap, err)
	}
	users, rooms := []string{"ann", "ben", "cat", "dan"}, []string{"r1", "r2", "r3"}
	done := make(chan error, 1)
	go func() {
		member := map[chat.Membership]bool{}
		for i := range 150 {
			var events []chat.Event
			for j := range 1 + i%3 {
				m := chat.Membership{User: users[(i+j)%len(users)], Room: rooms[(i*7+j)%len(rooms)]}
				e := join(m.User, m.Room)
				if member[m] {
					e = leave(m.User, m.Room)
				}
				if slices.ContainsFunc(events, func(o chat.Event) bool { return o.User == m.User && o.Room == m.Room }) {
					continue
				}
				member[m] = !member[m]
				e.TS = ts
				events = append(events, e)
			}
			if _, err := s.Append(ctx, math.MaxInt64, func(int64, []chat.Event) ([]chat.Event, error) { return events, nil }); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	check := func() {
		t.Helper()
		snap, err := s.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		log, err := s.Tail(ctx, 0, int(snap.Head)+1)
		if err != nil {
			t.Fatal(err)
		}
		wantIDs(t, "log up to the snapshot's head", log[:min(len(log), int(snap.Head))], 0, int(snap.Head))
		member, room := map[chat.Membership]bool{}, map[string]bool{}
		for _, e := range log[:snap.Head] {
			m := chat.Membership{User: e.User, Room: e.Room}
			switch e.Kind {
			case chat.KindJoin:
				member[m], room[e.Room] = true, true
			case chat.KindLeave:
				delete(member, m)
			}
		}
		wantRooms := slices.Sorted(maps.Keys(room))
		gotRooms := slices.Sorted(slices.Values(snap.Rooms))
		cmp := func(a, b chat.Membership) int {
			if a.User != b.User {
				return strings.Compare(a.User, b.User)
			}
			return strings.Compare(a.Room, b.Room)
		}
		wantMembers := slices.SortedFunc(maps.Keys(member), cmp)
		gotMembers := slices.SortedFunc(slices.Values(snap.Members), cmp)
		if !slices.Equal(gotRooms, wantRooms) || !slices.Equal(gotMembers, wantMembers) {
			t.Fatalf("snapshot at %d: rooms %v members %v; the log up to it implies %v and %v",
				snap.Head, gotRooms, gotMembers, wantRooms, wantMembers)
		}
	}
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			check()
			return
		default:
			check()
		}
	}
}
