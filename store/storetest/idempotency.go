package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/ssechat/ssechat/chat"
)

// The contract of Idempotency-Keys: AppendOnce looks the batch's keys up
// under the log's lock and hands prepare those it holds with their
// events; a key prepare returns beside an event is stored in the same
// transaction; keys are per user; PruneIdempotencyKeys deletes old ones.

var idempotencyTests = []struct {
	name string
	fn   func(*testing.T, Store)
}{
	{"IdempotencyKeyAnswersWithItsEvent", testKeyFindsOriginal},
	{"IdempotencyKeysArePerUser", testKeysPerUser},
	{"IdempotencyKeyIsWrittenWithItsEventOrNotAtAll", testKeyAtomic},
	{"IdempotencyKeyConcurrentRepeatsAppendOnce", testKeyConcurrent},
	{"IdempotencyKeysArePrunedAndReusable", testKeyPrune},
	{"IdempotencyKeyOfAPrunedEventIsGone", testKeyEventPruned},
}

// appendKeyed appends events, event i recording keys[i] if given, and
// returns what the lookup of lookup found.
func appendKeyed(t *testing.T, s Store, lookup []chat.Once, events []chat.Event, keys []chat.Once) ([]chat.Event, []chat.KeyedEvent) {
	t.Helper()
	var found []chat.KeyedEvent
	out, err := s.AppendOnce(context.Background(), math.MaxInt64, lookup,
		func(_ int64, _ []chat.Event, done []chat.KeyedEvent) ([]chat.Event, []chat.Once, error) {
			found = done
			return events, keys, nil
		})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return out, found
}

// lookUp returns what the store holds of keys, appending nothing.
func lookUp(t *testing.T, s Store, keys ...chat.Once) map[string]chat.KeyedEvent {
	t.Helper()
	_, found := appendKeyed(t, s, keys, nil, nil)
	out := make(map[string]chat.KeyedEvent, len(found))
	for _, k := range found {
		out[k.User+"/"+k.Key] = k
	}
	return out
}

func sameEvent(a, b chat.Event) bool {
	return a.ID == b.ID && a.Kind == b.Kind && a.Room == b.Room && a.From == b.From && a.To == b.To &&
		a.Text == b.Text && a.TS.Equal(b.TS)
}

func testKeyFindsOriginal(t *testing.T, s Store) {
	k1 := chat.NewOnce("alice", "k1", "room", "lobby", "hello")
	k2 := chat.NewOnce("alice", "k2", "user", "bob", "psst")
	events := []chat.Event{join("alice", "lobby"), say("alice", "lobby", "hello"), pm("alice", "bob", "psst")}
	for i := range events {
		events[i].TS = ts
	}
	// A key nobody stored is not found; keys ride beside events, not all
	// of which have one.
	out, found := appendKeyed(t, s, []chat.Once{k1, k2}, events, []chat.Once{{}, k1, k2})
	if len(found) != 0 || len(out) != 3 {
		t.Fatalf("first append found %v and appended %d events; want nothing and 3", found, len(out))
	}
	got := lookUp(t, s, k1, k2, chat.NewOnce("alice", "k3", "x"))
	if len(got) != 2 {
		t.Fatalf("lookup found %d keys, want k1 and k2: %+v", len(got), got)
	}
	for i, k := range []chat.Once{k1, k2} {
		g := got["alice/"+k.Key]
		if !sameEvent(g.Event, out[i+1]) {
			t.Errorf("key %s answers %+v, want its event %+v", k.Key, g.Event, out[i+1])
		}
		if !bytes.Equal(g.Request, k.Request) {
			t.Errorf("key %s holds request %x, want %x", k.Key, g.Request, k.Request)
		}
	}
	if head, _ := s.Head(context.Background()); head != 3 {
		t.Fatalf("head %d after lookups, want 3: a lookup appends nothing", head)
	}
	// Outside an append, the same.
	outside, err := s.KeyedEvents(context.Background(), []chat.Once{k2, chat.NewOnce("bob", "k1", "x")})
	if err != nil || len(outside) != 1 || outside[0].Key != "k2" || !sameEvent(outside[0].Event, out[2]) || !bytes.Equal(outside[0].Request, k2.Request) {
		t.Fatalf("KeyedEvents found %+v, %v; want k2 alone, with its event and request", outside, err)
	}
}

func testKeysPerUser(t *testing.T, s Store) {
	a := chat.NewOnce("alice", "same", "room", "lobby", "from alice")
	b := chat.NewOnce("bob", "same", "room", "lobby", "from bob")
	outA, _ := appendKeyed(t, s, nil, []chat.Event{say("alice", "lobby", "from alice")}, []chat.Once{a})
	if found := lookUp(t, s, b); len(found) != 0 {
		t.Fatalf("bob's key found alice's: %+v", found)
	}
	outB, _ := appendKeyed(t, s, nil, []chat.Event{say("bob", "lobby", "from bob")}, []chat.Once{b})
	got := lookUp(t, s, a, b)
	if got["alice/same"].Event.ID != outA[0].ID || got["bob/same"].Event.ID != outB[0].ID {
		t.Fatalf("alice's key answers %d, bob's %d; want %d and %d",
			got["alice/same"].Event.ID, got["bob/same"].Event.ID, outA[0].ID, outB[0].ID)
	}
}

func testKeyAtomic(t *testing.T, s Store) {
	k := chat.NewOnce("alice", "k", "room", "lobby", "hi")
	boom := errors.New("boom")
	_, err := s.AppendOnce(context.Background(), math.MaxInt64, nil,
		func(int64, []chat.Event, []chat.KeyedEvent) ([]chat.Event, []chat.Once, error) {
			return []chat.Event{say("alice", "lobby", "hi")}, []chat.Once{k}, boom
		})
	if err != boom {
		t.Fatalf("failing prepare: %v, want boom", err)
	}
	if found := lookUp(t, s, k); len(found) != 0 {
		t.Fatalf("an aborted append stored its key: %+v", found)
	}
}

// Writers racing with one key, each appending only if the key is not
// found, append one event between them: the lookup runs under the lock,
// after the previous append's key was committed.
func testKeyConcurrent(t *testing.T, s Store) {
	ctx := context.Background()
	const writers = 8
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		appended []chat.Event
		answered = map[int64]int{}
	)
	errc := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			k := chat.NewOnce("alice", "race", "room", "lobby", "once")
			var seen chat.Event
			out, err := s.AppendOnce(ctx, math.MaxInt64, []chat.Once{k},
				func(_ int64, _ []chat.Event, done []chat.KeyedEvent) ([]chat.Event, []chat.Once, error) {
					if len(done) > 0 {
						seen = done[0].Event
						return nil, nil, nil
					}
					e := say("alice", "lobby", "once")
					e.TS = ts
					return []chat.Event{e, say("alice", "lobby", fmt.Sprintf("no key %d", w))}, []chat.Once{k}, nil
				})
			if err != nil {
				errc <- err
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if len(out) > 0 {
				appended = append(appended, out[0])
				seen = out[0]
			}
			answered[seen.ID]++
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if len(appended) != 1 {
		t.Fatalf("%d writers appended the keyed event, want 1", len(appended))
	}
	if answered[appended[0].ID] != writers {
		t.Fatalf("answers by id: %v; want all %d writers answered with %d", answered, writers, appended[0].ID)
	}
}

func testKeyPrune(t *testing.T, s Store) {
	ctx := context.Background()
	old, recent := ts.Add(-chat.IdempotencyTTL-time.Minute), ts
	var keys []chat.Once
	for i := range 5 {
		k := chat.NewOnce("alice", fmt.Sprintf("old%d", i), "room", "lobby", "old")
		e := say("alice", "lobby", "old")
		e.TS = old
		appendKeyed(t, s, nil, []chat.Event{e}, []chat.Once{k})
		keys = append(keys, k)
	}
	fresh := chat.NewOnce("alice", "fresh", "room", "lobby", "new")
	e := say("alice", "lobby", "new")
	e.TS = recent
	appendKeyed(t, s, nil, []chat.Event{e}, []chat.Once{fresh})

	// A key stored again replaces its old row: what the broker does with
	// a key that expired before it was pruned.
	reused := chat.NewOnce("alice", "old0", "room", "lobby", "again")
	e = say("alice", "lobby", "again")
	e.TS = recent
	again, _ := appendKeyed(t, s, nil, []chat.Event{e}, []chat.Once{reused})
	got := lookUp(t, s, reused)["alice/old0"]
	if got.Event.ID != again[0].ID || !bytes.Equal(got.Request, reused.Request) {
		t.Fatalf("a reused key answers %+v, want its new event %d", got, again[0].ID)
	}

	cutoff := ts.Add(-chat.IdempotencyTTL)
	var total int64
	for {
		n, err := s.PruneIdempotencyKeys(ctx, cutoff, 2)
		if err != nil {
			t.Fatal(err)
		}
		if n > 2 {
			t.Fatalf("one prune deleted %d keys, more than its limit 2", n)
		}
		total += n
		if n < 2 {
			break
		}
	}
	if total != 4 {
		t.Fatalf("pruned %d keys, want the 4 old ones", total)
	}
	found := lookUp(t, s, append(keys, fresh)...)
	if len(found) != 2 || found["alice/fresh"].Event.Text != "new" || found["alice/old0"].Event.Text != "again" {
		t.Fatalf("after pruning the lookup found %+v; want fresh and the reused old0", found)
	}
	// A pruned key may be used again.
	k := keys[1]
	e = say("alice", "lobby", "old")
	e.TS = recent
	out, _ := appendKeyed(t, s, nil, []chat.Event{e}, []chat.Once{k})
	if got := lookUp(t, s, k)["alice/"+k.Key]; got.Event.ID != out[0].ID {
		t.Fatalf("a pruned key stored again answers %d, want %d", got.Event.ID, out[0].ID)
	}
}

// History retention may delete an event before its key expires: the key
// then answers nothing, as if it had expired.
func testKeyEventPruned(t *testing.T, s Store) {
	ctx := context.Background()
	k := chat.NewOnce("alice", "k", "room", "lobby", "old")
	e := say("alice", "lobby", "old")
	e.TS = time.Now().Add(-2 * time.Hour)
	appendKeyed(t, s, nil, []chat.Event{e}, []chat.Once{k})
	appendAt(t, s, 1, time.Now())
	if n, err := s.Prune(ctx, time.Now().Add(-time.Hour)); err != nil || n != 1 {
		t.Fatalf("prune: %d, %v; want 1 event", n, err)
	}
	if found := lookUp(t, s, k); len(found) != 0 {
		t.Fatalf("a key whose event was pruned answers %+v", found)
	}
}
