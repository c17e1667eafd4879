package broker_test

import (
	"context"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ssechat/ssechat/broker"
	"github.com/ssechat/ssechat/chat"
	"github.com/ssechat/ssechat/cluster"
	"github.com/ssechat/ssechat/store/sqlite"
)

// Writes racing with one key (most land in one batch) append one event,
// and every one of them is answered with it; another key is another
// message; a key given for other text is refused.
func TestIdempotencyKeyRacingWritesAppendOnce(t *testing.T) {
	br, store, closeBroker := newKeyBroker(t)
	defer closeBroker()
	ctx := context.Background()
	for _, u := range []string{"alice", "bob"} {
		if _, err := br.Join(ctx, u, "lobby"); err != nil {
			t.Fatal(err)
		}
	}
	const racers = 20
	type answer struct {
		e      chat.Event
		repeat bool
		err    error
	}
	answers := make(chan answer, 3*racers)
	var wg sync.WaitGroup
	for i := range racers {
		for _, key := range []string{"k1", "k2"} {
			wg.Go(func() {
				e, repeat, err := br.PostRoomOnce(ctx, "alice", "lobby", "hi "+key, chat.NewOnce("alice", key, "room", "lobby", "hi "+key))
				answers <- answer{e, repeat, err}
			})
		}
		if i%5 == 0 {
			wg.Go(func() {
				e, repeat, err := br.PostRoomOnce(ctx, "alice", "lobby", "other", chat.NewOnce("alice", "k1", "room", "lobby", "other"))
				answers <- answer{e, repeat, err}
			})
		}
	}
	wg.Wait()
	close(answers)
	ids := map[string]map[int64]int{}
	firsts, refused := map[string]int{}, 0
	for a := range answers {
		if a.err != nil {
			if chat.ErrorCode(a.err) != chat.EUNPROCESSABLE {
				t.Fatalf("unexpected error: %v", a.err)
			}
			refused++
			continue
		}
		if ids[a.e.Text] == nil {
			ids[a.e.Text] = map[int64]int{}
		}
		ids[a.e.Text][a.e.ID]++
		if !a.repeat {
			firsts[a.e.Text]++
		}
	}
	// The post with other text may win k1's race; then the racers for
	// "hi k1" are the ones refused.
	for text, byID := range ids {
		if len(byID) != 1 || firsts[text] != 1 {
			t.Errorf("%q: answered with ids %v, %d of them as first; want one id, one first", text, byID, firsts[text])
		}
	}
	if n := ids["hi k2"]; len(n) != 1 {
		t.Fatalf("k2 answers %v", n)
	}
	if refused == 0 {
		t.Fatalf("nobody was refused; k1 was used for two texts")
	}
	history, err := store.RoomHistory(ctx, "lobby", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(history) != 2 {
		t.Fatalf("the room holds %d messages, want 2 (one per key): %+v", len(history), history)
	}

	// Keys are per user: bob's k2 is his own message.
	e, repeat, err := br.PostRoomOnce(ctx, "bob", "lobby", "hi k2", chat.NewOnce("bob", "k2", "room", "lobby", "hi k2"))
	if err != nil || repeat || e.From != "bob" {
		t.Fatalf("bob's k2: %+v, repeat %v, %v; want a new message of his", e, repeat, err)
	}
}

// A repeat is answered from its key before anything else is checked: the
// writer has left the room since, and still gets the original. A write
// that was refused used no key.
func TestIdempotencyKeyAnswersAfterLeaving(t *testing.T) {
	br, _, closeBroker := newKeyBroker(t)
	defer closeBroker()
	ctx := context.Background()
	once := chat.NewOnce("alice", "k", "room", "lobby", "hi")
	if _, _, err := br.PostRoomOnce(ctx, "alice", "lobby", "hi", once); chat.ErrorCode(err) != chat.ENOTFOUND {
		t.Fatalf("post to a room nobody joined: %v, want not found", err)
	}
	if _, err := br.Join(ctx, "alice", "lobby"); err != nil {
		t.Fatal(err)
	}
	first, repeat, err := br.PostRoomOnce(ctx, "alice", "lobby", "hi", once)
	if err != nil || repeat {
		t.Fatalf("first post after a refused one: %v, repeat %v; want a new message", err, repeat)
	}
	if err := br.Leave(ctx, "alice", "lobby"); err != nil {
		t.Fatal(err)
	}
	again, repeat, err := br.PostRoomOnce(ctx, "alice", "lobby", "hi", once)
	if err != nil || !repeat || again.ID != first.ID || !again.TS.Equal(first.TS) {
		t.Fatalf("repeat after leaving: %+v, repeat %v, %v; want %+v", again, repeat, err, first)
	}
}

// A key whose event is older than chat.IdempotencyTTL posts anew, and
// then answers with the new event.
func TestIdempotencyKeyExpires(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chat.db")
	store, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	once := chat.NewOnce("alice", "k", "user", "bob", "hi")
	old := chat.Event{Kind: chat.KindPrivate, From: "alice", To: "bob", Text: "hi",
		TS: time.Now().Add(-chat.IdempotencyTTL - time.Minute).Truncate(time.Millisecond)}
	if _, err := store.AppendOnce(ctx, math.MaxInt64, nil, func(int64, []chat.Event, []chat.KeyedEvent) ([]chat.Event, []chat.Once, error) {
		return []chat.Event{old}, []chat.Once{once}, nil
	}); err != nil {
		t.Fatal(err)
	}
	store.Close()
	br, _, closeBroker := openKeyBroker(t, path)
	defer closeBroker()
	fresh, repeat, err := br.PostPrivateOnce(ctx, "alice", "bob", "hi", once)
	if err != nil || repeat || fresh.ID != 2 {
		t.Fatalf("post with an expired key: %+v, repeat %v, %v; want new event 2", fresh, repeat, err)
	}
	again, repeat, err := br.PostPrivateOnce(ctx, "alice", "bob", "hi", once)
	if err != nil || !repeat || again.ID != fresh.ID {
		t.Fatalf("repeat: %+v, repeat %v, %v; want %d", again, repeat, err, fresh.ID)
	}
}

func newKeyBroker(t *testing.T) (*broker.Broker, *sqlite.Store, func()) {
	return openKeyBroker(t, filepath.Join(t.TempDir(), "chat.db"))
}

func openKeyBroker(t *testing.T, path string) (*broker.Broker, *sqlite.Store, func()) {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	br, err := broker.New(ctx, store, cluster.NewLocal(), slog.New(slog.NewTextHandler(io.Discard, nil)), broker.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return br, store, func() {
		br.Close()
		store.Close()
	}
}
