// Package storetest is the conformance suite every chat store backend
// runs: the semantics the broker, accounts and history rely on, checked
// the same way whatever the database.
package storetest

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/ssechat/ssechat/chat"
)

// Store is everything a backend provides.
type Store interface {
	CreateUser(ctx context.Context, name string, passwordHash []byte) error
	User(ctx context.Context, name string) (canonical string, passwordHash []byte, err error)
	// Sessions: see sessions.go for the contract.
	CreateSession(ctx context.Context, tokenHash []byte, username string, now time.Time) error
	Session(ctx context.Context, tokenHash []byte) (chat.Session, error)
	TouchSession(ctx context.Context, tokenHash []byte, at time.Time) error
	DeleteSession(ctx context.Context, tokenHash []byte) error
	DeleteUserSessions(ctx context.Context, user string) ([][]byte, error)
	PruneSessions(ctx context.Context, before time.Time, limit int) ([][]byte, error)
	Append(ctx context.Context, after int64, prepare func(head int64, newer []chat.Event) ([]chat.Event, error)) ([]chat.Event, error)
	Head(ctx context.Context) (int64, error)
	Tail(ctx context.Context, after int64, limit int) ([]chat.Event, error)
	Snapshot(ctx context.Context) (chat.Snapshot, error)
	EventsAfter(ctx context.Context, user string, after, upTo int64, limit int) ([]chat.Event, error)
	RoomHistory(ctx context.Context, room string, before int64, limit int) ([]chat.Event, error)
	PrivateHistory(ctx context.Context, a, b string, before int64, limit int) ([]chat.Event, error)
	Conversations(ctx context.Context, user string) ([]chat.Conversation, error)
	// Read markers: see read.go.
	ReadTarget(ctx context.Context, key chat.ReadKey, id int64) (target, head int64, err error)
	ReadFloors(ctx context.Context, keys []chat.ReadKey) ([]int64, error)
	RoomReads(ctx context.Context, user string, rooms []string) (map[string]chat.ReadState, error)
	ConversationRead(ctx context.Context, user, with string) (chat.ReadState, error)
	// Retention: Prune deletes a prefix of the log older than cutoff,
	// PrunedThrough is the newest id it may have deleted, and EventsAfter
	// from below that boundary is a *chat.Error.
	Prune(ctx context.Context, cutoff time.Time) (int64, error)
	PrunedThrough(ctx context.Context) (int64, error)
	// Idempotency-Keys: see idempotency.go.
	AppendOnce(ctx context.Context, after int64, keys []chat.Once, prepare func(head int64, newer []chat.Event, done []chat.KeyedEvent) ([]chat.Event, []chat.Once, error)) ([]chat.Event, error)
	PruneIdempotencyKeys(ctx context.Context, before time.Time, limit int) (int64, error)
	KeyedEvents(ctx context.Context, keys []chat.Once) ([]chat.KeyedEvent, error)
}

// Run runs the suite; open returns a new, empty store for each test.
func Run(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(*testing.T, Store)
	}{
		{"Accounts", testAccounts},
		{"Sessions", testSessions},
		{"TouchSessionOnlyMovesForward", testTouchSession},
		{"DeleteUserSessionsEndsTheirsOnly", testDeleteUserSessions},
		{"PruneSessionsDeletesUnusedInBatches", testPruneSessions},
		{"AppendOrdersAndTracksMembership", testAppend},
		{"EventsAfterFollowsMembershipPeriods", testEventsAfterPeriods},
		{"EventsAfterPrivate", testEventsAfterPrivate},
		{"HistoryPages", testHistory},
		{"AppendGivesPrepareTheHead", testAppendHead},
		{"AppendConcurrentIsContiguous", testAppendConcurrent},
		{"TailReadsTheWholeLog", testTail},
		{"SnapshotIsConsistent", testSnapshot},
		{"PruneRemovesOldPrefixAndRecordsBoundary", testPrune},
		{"PruneKeepsAPrefixWhenTheClockSteppedBack", testPruneClockBack},
		{"PruneDoesNotBlockWriters", testPruneDoesNotBlockWriters},
		{"EventsAfterDuringPruneIsGaplessOrAnError", testEventsAfterDuringPrune},
		{"RoomReadsCountOthersMessagesSinceMarkOrJoin", testRoomReads},
		{"ConversationReadsCountThePeersMessages", testConversationReads},
		{"ReadEventsAreTheirUsersOnly", testReadEventsAreTheirUsersOnly},
		{"ReadTargetIsTheNewestMessageAtOrBelow", testReadTargets},
		{"UnreadCountsStopAtMaxUnread", testUnreadCap},
	}
	tests = append(tests, idempotencyTests...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

var ts = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func mustAppend(t *testing.T, s Store, events ...chat.Event) []chat.Event {
	t.Helper()
	for i := range events {
		events[i].TS = ts
	}
	out, err := s.Append(context.Background(), math.MaxInt64, func(int64, []chat.Event) ([]chat.Event, error) { return events, nil })
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return out
}

func join(user, room string) chat.Event {
	return chat.Event{Kind: chat.KindJoin, User: user, Room: room}
}
func leave(user, room string) chat.Event {
	return chat.Event{Kind: chat.KindLeave, User: user, Room: room}
}
func say(from, room, text string) chat.Event {
	return chat.Event{Kind: chat.KindMessage, From: from, Room: room, Text: text}
}
func pm(from, to, text string) chat.Event {
	return chat.Event{Kind: chat.KindPrivate, From: from, To: to, Text: text}
}

func ids(events []chat.Event) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

func testAccounts(t *testing.T, s Store) {
	ctx := context.Background()
	if err := s.CreateUser(ctx, "Alice", []byte("hash")); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, "ALICE", []byte("other")); chat.ErrorCode(err) != chat.ECONFLICT {
		t.Fatalf("second Alice in another case: %v, want conflict", err)
	}
	name, hash, err := s.User(ctx, "alice")
	if err != nil || name != "Alice" || string(hash) != "hash" {
		t.Fatalf("User(alice) = %q, %q, %v", name, hash, err)
	}
	if _, _, err := s.User(ctx, "bob"); chat.ErrorCode(err) != chat.ENOTFOUND {
		t.Fatalf("User(bob) error %v, want not found", err)
	}
}

func testAppend(t *testing.T, s Store) {
	ctx := context.Background()
	if head, err := s.Head(ctx); err != nil || head != 0 {
		t.Fatalf("empty head = %d, %v", head, err)
	}
	got := mustAppend(t, s, join("alice", "lobby"), say("alice", "lobby", "one"), join("bob", "lobby"), join("bob", "den"))
	for i := 1; i < len(got); i++ {
		if got[i].ID <= got[i-1].ID {
			t.Fatalf("ids not increasing: %v", ids(got))
		}
	}
	mustAppend(t, s, leave("bob", "lobby"))
	snap, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rooms, members := snap.Rooms, snap.Members
	slices.SortFunc(members, func(a, b chat.Membership) int {
		if a.User+a.Room < b.User+b.Room {
			return -1
		}
		return 1
	})
	want := []chat.Membership{{User: "alice", Room: "lobby"}, {User: "bob", Room: "den"}}
	if !slices.Equal(rooms, []string{"den", "lobby"}) || !slices.Equal(members, want) {
		t.Fatalf("rooms %v, members %v; want [den lobby] and %v", rooms, members, want)
	}
	head, err := s.Head(ctx)
	if err != nil || head < got[3].ID {
		t.Fatalf("head %d below the last id %d (%v)", head, got[3].ID, err)
	}
}

// A user may replay a room's events from their join to their leave, both
// included, and again from a rejoin: what live delivery sent them.
func testEventsAfterPeriods(t *testing.T, s Store) {
	ctx := context.Background()
	before := mustAppend(t, s, join("alice", "lobby"), say("alice", "lobby", "before bob"))
	period1 := mustAppend(t, s, join("bob", "lobby"), say("alice", "lobby", "while bob in"), leave("bob", "lobby"))
	mustAppend(t, s, say("alice", "lobby", "while bob out"))
	period2 := mustAppend(t, s, join("bob", "lobby"), say("alice", "lobby", "bob back"))
	head, _ := s.Head(ctx)

	got, err := s.EventsAfter(ctx, "bob", 0, head, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := append(ids(period1), ids(period2)...)
	if !slices.Equal(ids(got), want) {
		t.Fatalf("bob replays %v, want %v (his periods only)", ids(got), want)
	}
	got, _ = s.EventsAfter(ctx, "bob", period1[1].ID, head, 100)
	if want := append([]int64{period1[2].ID}, ids(period2)...); !slices.Equal(ids(got), want) {
		t.Fatalf("bob after %d replays %v, want %v", period1[1].ID, ids(got), want)
	}
	got, _ = s.EventsAfter(ctx, "bob", 0, period1[1].ID, 100)
	if want := ids(period1[:2]); !slices.Equal(ids(got), want) {
		t.Fatalf("bob up to %d replays %v, want %v", period1[1].ID, ids(got), want)
	}
	got, _ = s.EventsAfter(ctx, "bob", 0, head, 2)
	if !slices.Equal(ids(got), ids(period1[:2])) {
		t.Fatalf("limit 2 gave %v", ids(got))
	}
	got, _ = s.EventsAfter(ctx, "alice", 0, head, 100)
	if len(got) != 8 || got[0].ID != before[0].ID {
		t.Fatalf("alice, in the room throughout, replays %d events from %d; want all 8", len(got), got[0].ID)
	}
}

func testEventsAfterPrivate(t *testing.T, s Store) {
	ctx := context.Background()
	mustAppend(t, s, join("alice", "lobby"), join("bob", "lobby"), join("carol", "den"))
	events := mustAppend(t, s,
		pm("alice", "bob", "to bob"),
		pm("bob", "alice", "to alice"),
		pm("carol", "dave", "not theirs"),
	)
	head, _ := s.Head(ctx)
	got, err := s.EventsAfter(ctx, "bob", events[0].ID-1, head, 100)
	if err != nil {
		t.Fatal(err)
	}
	// bob: both private messages, never carol's.
	if want := []int64{events[0].ID, events[1].ID}; !slices.Equal(ids(got), want) {
		t.Fatalf("bob replays %v, want %v", ids(got), want)
	}
	if got[0].Text != "to bob" || got[0].From != "alice" || got[0].To != "bob" || !got[0].TS.Equal(ts) {
		t.Fatalf("private event read back as %+v", got[0])
	}
}

func testHistory(t *testing.T, s Store) {
	ctx := context.Background()
	mustAppend(t, s, join("alice", "lobby"))
	var sent []chat.Event
	for _, text := range []string{"1", "2", "3", "4", "5"} {
		sent = append(sent, mustAppend(t, s, say("alice", "lobby", text), pm("alice", "bob", text))...)
	}
	room, err := s.RoomHistory(ctx, "lobby", 0, 2)
	if err != nil || len(room) != 2 || room[0].Text != "4" || room[1].Text != "5" {
		t.Fatalf("newest room page: %+v, %v", room, err)
	}
	room, _ = s.RoomHistory(ctx, "lobby", room[0].ID, 10)
	if len(room) != 3 || room[0].Text != "1" || room[2].Text != "3" {
		t.Fatalf("older room page: %+v", room)
	}
	private, _ := s.PrivateHistory(ctx, "bob", "alice", 0, 3)
	if len(private) != 3 || private[0].Text != "3" || private[2].Text != "5" || private[0].Kind != chat.KindPrivate {
		t.Fatalf("private page: %+v", private)
	}
	convs, err := s.Conversations(ctx, "bob")
	if err != nil || len(convs) != 1 || convs[0].User != "alice" || convs[0].LastID != sent[len(sent)-1].ID {
		t.Fatalf("bob's conversations: %+v, %v", convs, err)
	}
}
