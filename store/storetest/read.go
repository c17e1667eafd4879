package storetest

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/ssechat/ssechat/chat"
)

func markRoom(user, room string, id int64) chat.Event {
	return chat.Event{Kind: chat.KindRead, User: user, Room: room, Read: id}
}

func markWith(user, with string, id int64) chat.Event {
	return chat.Event{Kind: chat.KindRead, User: user, To: with, Read: id}
}

func wantFloors(t *testing.T, s Store, keys []chat.ReadKey, want ...int64) {
	t.Helper()
	got, err := s.ReadFloors(context.Background(), keys)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("ReadFloors(%v) = %v (%v), want %v", keys, got, err, want)
	}
}

func wantRoomReads(t *testing.T, s Store, user string, rooms []string, want map[string]chat.ReadState) {
	t.Helper()
	got, err := s.RoomReads(context.Background(), user, rooms)
	if err != nil || !maps.Equal(got, want) {
		t.Fatalf("RoomReads(%s, %v) = %v (%v), want %v", user, rooms, got, err, want)
	}
}

// A room's read state is the later of the user's marker and their current
// membership's join; unread counts the room's messages after it that
// others wrote, nothing else. A read event moves the marker in its
// append, never backwards.
func testRoomReads(t *testing.T, s Store) {
	joins := mustAppend(t, s, join("alice", "lobby"), join("bob", "lobby"), join("bob", "den"))
	bobs := mustAppend(t, s, say("bob", "lobby", "1"), say("bob", "lobby", "2"), say("bob", "lobby", "3"))
	mustAppend(t, s, say("alice", "lobby", "mine"), say("bob", "den", "elsewhere"), pm("bob", "alice", "not the room's"))
	keys := []chat.ReadKey{{User: "alice", Room: "lobby"}, {User: "bob", Room: "lobby"}, {User: "carol", Room: "lobby"}, {User: "alice", Room: "den"}}
	wantFloors(t, s, keys, joins[0].ID, joins[1].ID, 0, 0)
	wantRoomReads(t, s, "alice", []string{"lobby", "den", "nowhere"}, map[string]chat.ReadState{
		"lobby": {Read: joins[0].ID, Unread: 3}, // bob's three; her own and the private one are not the room's unread
	})
	wantRoomReads(t, s, "bob", []string{"den", "lobby"}, map[string]chat.ReadState{
		"lobby": {Read: joins[1].ID, Unread: 1},
		"den":   {Read: joins[2].ID, Unread: 0},
	})
	wantRoomReads(t, s, "bob", []string{"den"}, map[string]chat.ReadState{"den": {Read: joins[2].ID, Unread: 0}})
	wantRoomReads(t, s, "carol", []string{"lobby"}, map[string]chat.ReadState{})

	marked := mustAppend(t, s, markRoom("alice", "lobby", bobs[1].ID))
	if e := marked[0]; e.Kind != chat.KindRead || e.User != "alice" || e.Room != "lobby" || e.Read != bobs[1].ID {
		t.Fatalf("read event appended as %+v", e)
	}
	wantFloors(t, s, keys[:1], bobs[1].ID)
	wantRoomReads(t, s, "alice", []string{"lobby"}, map[string]chat.ReadState{"lobby": {Read: bobs[1].ID, Unread: 1}})
	// The store never moves a marker back, even if asked to.
	mustAppend(t, s, markRoom("alice", "lobby", bobs[0].ID))
	wantFloors(t, s, keys[:1], bobs[1].ID)
	mustAppend(t, s, say("bob", "lobby", "4"), markRoom("alice", "lobby", bobs[2].ID))
	wantRoomReads(t, s, "alice", []string{"lobby"}, map[string]chat.ReadState{"lobby": {Read: bobs[2].ID, Unread: 1}})

	// Rejoining starts from the new join: what was said while away was
	// never the user's to read, however old their marker.
	mustAppend(t, s, leave("alice", "lobby"))
	wantRoomReads(t, s, "alice", []string{"lobby"}, map[string]chat.ReadState{})
	mustAppend(t, s, say("bob", "lobby", "while alice is out"))
	rejoin := mustAppend(t, s, join("alice", "lobby"), say("bob", "lobby", "welcome back"))
	wantFloors(t, s, keys[:1], rejoin[0].ID)
	wantRoomReads(t, s, "alice", []string{"lobby"}, map[string]chat.ReadState{"lobby": {Read: rejoin[0].ID, Unread: 1}})
}

// A conversation's read state is the user's marker (0 before any);
// unread counts the other's messages to them after it.
func testConversationReads(t *testing.T, s Store) {
	ctx := context.Background()
	fromBob := mustAppend(t, s, pm("bob", "alice", "1"), pm("bob", "alice", "2"), pm("alice", "bob", "mine"),
		pm("alice", "alice", "a note to self"), pm("bob", "carol", "not alice's"), join("bob", "lobby"), say("bob", "lobby", "room"))
	want := func(user, with string, st chat.ReadState) {
		t.Helper()
		got, err := s.ConversationRead(ctx, user, with)
		if err != nil || got != st {
			t.Fatalf("ConversationRead(%s, %s) = %+v (%v), want %+v", user, with, got, err, st)
		}
	}
	want("alice", "bob", chat.ReadState{Read: 0, Unread: 2})
	want("bob", "alice", chat.ReadState{Read: 0, Unread: 1})
	want("alice", "alice", chat.ReadState{}) // her own messages, never unread
	want("alice", "dave", chat.ReadState{})
	wantFloors(t, s, []chat.ReadKey{{User: "alice", With: "bob"}}, 0)

	marked := mustAppend(t, s, markWith("alice", "bob", fromBob[0].ID))
	if e := marked[0]; e.Kind != chat.KindRead || e.User != "alice" || e.To != "bob" || e.Room != "" || e.Read != fromBob[0].ID {
		t.Fatalf("read event appended as %+v", e)
	}
	want("alice", "bob", chat.ReadState{Read: fromBob[0].ID, Unread: 1})
	want("bob", "alice", chat.ReadState{Read: 0, Unread: 1}) // bob's marker is his own
	wantFloors(t, s, []chat.ReadKey{{User: "alice", With: "bob"}, {User: "alice", Room: "bob"}}, fromBob[0].ID, 0)

	convs, err := s.Conversations(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]chat.Conversation{}
	for _, c := range convs {
		got[c.User] = c
	}
	if len(convs) != 2 || got["bob"].ReadState != (chat.ReadState{Read: fromBob[0].ID, Unread: 1}) ||
		got["alice"].ReadState != (chat.ReadState{}) || got["bob"].LastID != fromBob[2].ID {
		t.Fatalf("alice's conversations: %+v", convs)
	}
	convs, err = s.Conversations(ctx, "carol")
	if err != nil || len(convs) != 1 || convs[0].ReadState != (chat.ReadState{Read: 0, Unread: 1}) {
		t.Fatalf("carol's conversations: %+v, %v", convs, err)
	}
}

// Read events are in the log like any other, carrying their marker, but
// replay gives each user their own and nobody else's, and history has none.
func testReadEventsAreTheirUsersOnly(t *testing.T, s Store) {
	ctx := context.Background()
	start := mustAppend(t, s, join("alice", "lobby"), join("bob", "lobby"), say("bob", "lobby", "hi"), pm("bob", "alice", "psst"))
	marks := mustAppend(t, s, markRoom("alice", "lobby", start[2].ID), markWith("alice", "bob", start[3].ID))
	after := mustAppend(t, s, say("alice", "lobby", "read it"))
	head, _ := s.Head(ctx)

	tail, err := s.Tail(ctx, start[3].ID, 10)
	if err != nil || len(tail) != 3 {
		t.Fatalf("tail: %v, %v", tail, err)
	}
	for i, e := range marks {
		tail[i].TS = e.TS
		if tail[i] != e {
			t.Fatalf("read event read back as %+v, appended as %+v", tail[i], e)
		}
	}
	got, err := s.EventsAfter(ctx, "alice", start[1].ID, head, 100)
	if want := []int64{start[2].ID, start[3].ID, marks[0].ID, marks[1].ID, after[0].ID}; err != nil || !slices.Equal(ids(got), want) {
		t.Fatalf("alice replays %v (%v), want %v: her read events among the rest", ids(got), err, want)
	}
	if got[2].Read != start[2].ID || got[3].To != "bob" || got[3].Read != start[3].ID {
		t.Fatalf("alice replays her read events as %+v and %+v", got[2], got[3])
	}
	got, err = s.EventsAfter(ctx, "bob", start[1].ID, head, 100)
	if want := []int64{start[2].ID, start[3].ID, after[0].ID}; err != nil || !slices.Equal(ids(got), want) {
		t.Fatalf("bob replays %v (%v), want %v: none of alice's read events", ids(got), err, want)
	}
	room, err := s.RoomHistory(ctx, "lobby", 0, 100)
	if err != nil || !slices.Equal(ids(room), []int64{start[2].ID, after[0].ID}) {
		t.Fatalf("room history %v (%v): read events are no messages", ids(room), err)
	}
	private, err := s.PrivateHistory(ctx, "alice", "bob", 0, 100)
	if err != nil || !slices.Equal(ids(private), []int64{start[3].ID}) {
		t.Fatalf("private history %v (%v): read events are no messages", ids(private), err)
	}
}

// A mark moves its marker to the newest message at or below it, of the
// room (anyone's) or of the conversation (either way): other events, and
// other rooms' and conversations' messages, are no place to read up to.
// The head comes with it, from the same moment.
func testReadTargets(t *testing.T, s Store) {
	ctx := context.Background()
	e := mustAppend(t, s,
		join("alice", "lobby"), join("bob", "lobby"), say("bob", "lobby", "a"), join("carol", "lobby"),
		say("alice", "lobby", "b"), join("carol", "den"), say("carol", "den", "elsewhere"),
		pm("bob", "alice", "1"), pm("alice", "bob", "2"), pm("carol", "alice", "3"),
		markRoom("alice", "lobby", 3), say("carol", "den", "last"))
	head := e[len(e)-1].ID
	lobby := func(user string) chat.ReadKey { return chat.ReadKey{User: user, Room: "lobby"} }
	with := func(user, other string) chat.ReadKey { return chat.ReadKey{User: user, With: other} }
	for _, c := range []struct {
		key  chat.ReadKey
		id   int64
		want int64
	}{
		{lobby("alice"), e[3].ID, e[2].ID}, // carol's join is not a message
		{lobby("alice"), e[4].ID, e[4].ID}, // her own message is one
		{lobby("bob"), e[1].ID, 0},
		{lobby("alice"), head, e[4].ID}, // den's messages, private ones and read events are not the lobby's
		{chat.ReadKey{User: "alice", Room: "nowhere"}, head, 0},
		{with("alice", "bob"), e[7].ID, e[7].ID},
		{with("alice", "bob"), head, e[8].ID}, // hers to him count as well
		{with("bob", "alice"), e[8].ID - 1, e[7].ID},
		{with("alice", "carol"), e[8].ID, 0},
		{with("carol", "alice"), head, e[9].ID},
		{with("alice", "dave"), head, 0},
	} {
		target, h, err := s.ReadTarget(ctx, c.key, c.id)
		if err != nil || target != c.want || h != head {
			t.Errorf("ReadTarget(%+v, %d) = %d, head %d (%v); want %d, head %d", c.key, c.id, target, h, err, c.want, head)
		}
	}
}

// Unread counts stop at chat.MaxUnread, in a room, a conversation and the
// list of conversations: a listing never counts a whole busy history.
func testUnreadCap(t *testing.T, s Store) {
	ctx := context.Background()
	mustAppend(t, s, join("alice", "lobby"), join("bob", "lobby"))
	var flood []chat.Event
	for range chat.MaxUnread + 5 {
		flood = append(flood, say("bob", "lobby", "m"), pm("bob", "alice", "p"))
	}
	mustAppend(t, s, flood...)
	reads, err := s.RoomReads(ctx, "alice", []string{"lobby"})
	if err != nil || reads["lobby"].Unread != chat.MaxUnread {
		t.Fatalf("RoomReads: %+v, %v; want %d unread", reads, err, chat.MaxUnread)
	}
	conv, err := s.ConversationRead(ctx, "alice", "bob")
	if err != nil || conv.Unread != chat.MaxUnread {
		t.Fatalf("ConversationRead: %+v, %v; want %d unread", conv, err, chat.MaxUnread)
	}
	convs, err := s.Conversations(ctx, "alice")
	if err != nil || len(convs) != 1 || convs[0].Unread != chat.MaxUnread {
		t.Fatalf("Conversations: %+v, %v; want one with %d unread", convs, err, chat.MaxUnread)
	}
}
