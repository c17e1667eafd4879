package handlers_test

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/ssechat/ssechat/internal/chattest"
)

// roomRead is a room of GET /api/rooms with the caller's read state, if
// they are a member.
type roomRead struct {
	Room    string  `json:"room"`
	Members int     `json:"members"`
	Read    *string `json:"read"`
	Unread  *int    `json:"unread"`
}

func roomReads(t *testing.T, c *chattest.Client) map[string]roomRead {
	t.Helper()
	var page struct{ Rooms []roomRead }
	c.MustDo("GET", "/api/rooms", nil, &page, 200)
	out := map[string]roomRead{}
	for _, r := range page.Rooms {
		out[r.Room] = r
	}
	return out
}

// wantRoomRead fails unless c's room reads read (an id) with unread.
func wantRoomRead(t *testing.T, c *chattest.Client, room, read string, unread int) {
	t.Helper()
	r, ok := roomReads(t, c)[room]
	if !ok || r.Read == nil || r.Unread == nil || *r.Read != read || *r.Unread != unread {
		t.Fatalf("%s's %s in GET /api/rooms: %+v, want read %s unread %d", c.Name, room, r, read, unread)
	}
}

type conversationRead struct {
	User   string `json:"user"`
	LastID string `json:"last_id"`
	Read   string `json:"read"`
	Unread int    `json:"unread"`
}

func conversationReads(t *testing.T, c *chattest.Client) map[string]conversationRead {
	t.Helper()
	var list struct{ Conversations []conversationRead }
	c.MustDo("GET", "/api/conversations", nil, &list, 200)
	out := map[string]conversationRead{}
	for _, conv := range list.Conversations {
		out[conv.User] = conv
	}
	return out
}

type readAnswer struct {
	Room   string `json:"room"`
	With   string `json:"with"`
	Read   string `json:"read"`
	Unread int    `json:"unread"`
}

func mark(t *testing.T, c *chattest.Client, path, id string) readAnswer {
	t.Helper()
	var a readAnswer
	c.MustDo("POST", path, map[string]string{"id": id}, &a, 200)
	return a
}

func num(t *testing.T, id string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		t.Fatalf("id %q: %v", id, err)
	}
	return n
}

// next is the id after id.
func next(t *testing.T, id string) string {
	t.Helper()
	return strconv.FormatInt(num(t, id)+1, 10)
}

// noReadEvents fails if frames hold a read event: nobody sees another
// user's.
func noReadEvents(t *testing.T, who string, frames []chattest.Frame) {
	t.Helper()
	for _, f := range frames {
		if f.Kind == "read" {
			t.Fatalf("%s got a read event that is not theirs: %s", who, f.Data)
		}
	}
}

// A member marks a room read: the answer says where they stand, every
// stream of theirs gets the read event and nobody else's does; a mark
// never goes back and grows the log only when it moves; GET /api/rooms
// counts what others wrote since, and only for the caller's rooms.
func TestMarkRoomRead(t *testing.T) {
	srv := chattest.Start(t)
	alice, bob, carol := srv.Login(t, "alice"), srv.Login(t, "bob"), srv.Login(t, "carol")
	alice.Join("lobby")
	bob.Join("lobby")
	bob.Join("den")
	tab1, tab2, bobS, carolS := alice.Stream(""), alice.Stream(""), bob.Stream(""), carol.Stream("")
	for _, s := range []*chattest.Stream{tab1, tab2, bobS, carolS} {
		s.Ready()
	}
	said := []chattest.Event{bob.Say("lobby", "one"), bob.Say("lobby", "two"), bob.Say("lobby", "three")}
	mine := alice.Say("lobby", "mine")

	// Before any mark, a member has read up to their join: everything
	// others said since is unread, their own message is not.
	rooms := roomReads(t, alice)
	lobby := rooms["lobby"]
	if lobby.Read == nil || lobby.Unread == nil || *lobby.Unread != 3 {
		t.Fatalf("alice's lobby before any mark: %+v, want 3 unread", lobby)
	}
	aliceJoin := *lobby.Read
	if den := rooms["den"]; den.Read != nil || den.Unread != nil || den.Members != 1 {
		t.Fatalf("den, which alice is not in, carries %+v", den)
	}

	got := mark(t, alice, "/api/rooms/lobby/read", said[1].ID)
	if got != (readAnswer{Room: "lobby", Read: said[1].ID, Unread: 1}) {
		t.Fatalf("mark answered %+v, want lobby read %s unread 1", got, said[1].ID)
	}
	var readID string
	for name, s := range map[string]*chattest.Stream{"tab 1": tab1, "tab 2": tab2} {
		f := s.Expect("read", nil)
		if f.Event.Room != "lobby" || f.Event.Read != said[1].ID || f.Event.With != "" || f.Event.User != "" ||
			f.ID != next(t, mine.ID) || f.Event.ID != f.ID || f.Event.TS == "" {
			t.Fatalf("alice's %s got %s (id %s), want lobby read %s with id %s", name, f.Data, f.ID, said[1].ID, next(t, mine.ID))
		}
		readID = f.ID
	}
	wantRoomRead(t, alice, "lobby", said[1].ID, 1)
	wantRoomRead(t, bob, "lobby", *roomReads(t, bob)["lobby"].Read, 1) // alice's message only: bob's own never count

	// Never backwards, and a no-op appends nothing: the next message
	// follows alice's read event directly.
	if got := mark(t, alice, "/api/rooms/lobby/read", said[0].ID); got != (readAnswer{Room: "lobby", Read: said[1].ID, Unread: 1}) {
		t.Fatalf("a backward mark answered %+v, want the marker unchanged", got)
	}
	if got := mark(t, alice, "/api/rooms/lobby/read", "0"); got.Read != said[1].ID {
		t.Fatalf("mark 0 answered %+v", got)
	}
	if got := mark(t, alice, "/api/rooms/lobby/read", said[1].ID); got.Read != said[1].ID {
		t.Fatalf("the same mark again answered %+v", got)
	}
	four := bob.Say("lobby", "four")
	if four.ID != next(t, readID) {
		t.Fatalf("bob's next message has id %s, want %s: a mark that moved nothing was logged", four.ID, next(t, readID))
	}
	wantRoomRead(t, alice, "lobby", said[1].ID, 2)

	// Bob and carol never see alice's read events: everything on their
	// streams up to bob's message is read-free.
	noReadEvents(t, "bob", bobS.Until(func(f chattest.Frame) bool { return f.ID == four.ID && f.Kind == "message" }))
	bob.MustDo("POST", "/api/users/carol/messages", map[string]string{"text": "marker"}, nil, 201)
	noReadEvents(t, "carol", carolS.Until(func(f chattest.Frame) bool { return f.Kind == "private" }))
	// And alice does not see bob's.
	if got := mark(t, bob, "/api/rooms/lobby/read", four.ID); got.Unread != 0 || got.Read != four.ID {
		t.Fatalf("bob's mark answered %+v", got)
	}
	bobS.Expect("read", func(e chattest.Event) bool { return e.Read == four.ID })
	last := alice.Say("lobby", "after bob's mark")
	noReadEvents(t, "alice", tab1.Until(func(f chattest.Frame) bool { return f.ID == last.ID }))

	// Marking up to the head reads everything; past it is refused.
	if got := mark(t, alice, "/api/rooms/lobby/read", last.ID); got.Unread != 0 {
		t.Fatalf("marking the newest message answered %+v", got)
	}
	alice.MustDo("POST", "/api/rooms/lobby/read", map[string]string{"id": "1000000"}, nil, http.StatusBadRequest)
	// Rejoining starts from the new join.
	alice.MustDo("POST", "/api/rooms/lobby/leave", nil, nil, http.StatusNoContent)
	if r := roomReads(t, alice)["lobby"]; r.Read != nil || r.Unread != nil {
		t.Fatalf("a room alice left still carries her read state: %+v", r)
	}
	alice.MustDo("POST", "/api/rooms/lobby/read", map[string]string{"id": last.ID}, nil, http.StatusForbidden)
	away := bob.Say("lobby", "while alice is away")
	alice.Join("lobby")
	rejoin := *roomReads(t, alice)["lobby"].Read
	if num(t, rejoin) != num(t, away.ID)+1 || num(t, aliceJoin) >= num(t, away.ID) {
		t.Fatalf("after rejoining, alice has read up to %s, want her new join %s", rejoin, next(t, away.ID))
	}
	wantRoomRead(t, alice, "lobby", rejoin, 0)
	bob.Say("lobby", "welcome back")
	wantRoomRead(t, alice, "lobby", rejoin, 1)
}

// Marks are checked like any write: a member's, of an existing room, with
// an id that is a decimal string no later than the log's head.
func TestMarkReadRefusesBadMarks(t *testing.T) {
	srv := chattest.Start(t)
	alice, carol := srv.Login(t, "alice"), srv.Login(t, "carol")
	alice.Join("lobby")
	said := alice.Say("lobby", "hi")
	for _, c := range []struct {
		who  *chattest.Client
		path string
		body any
		want int
	}{
		{carol, "/api/rooms/lobby/read", map[string]string{"id": said.ID}, http.StatusForbidden},
		{alice, "/api/rooms/nowhere/read", map[string]string{"id": said.ID}, http.StatusNotFound},
		{alice, "/api/rooms/..x/read", map[string]string{"id": said.ID}, http.StatusNotFound},
		{alice, "/api/rooms/lobby/read", map[string]string{"id": next(t, said.ID)}, http.StatusBadRequest},
		{alice, "/api/rooms/lobby/read", map[string]any{"id": 1}, http.StatusBadRequest},
		{alice, "/api/rooms/lobby/read", map[string]string{"id": "-1"}, http.StatusBadRequest},
		{alice, "/api/rooms/lobby/read", map[string]string{"id": "+1"}, http.StatusBadRequest},
		{alice, "/api/rooms/lobby/read", map[string]string{"id": ""}, http.StatusBadRequest},
		{alice, "/api/rooms/lobby/read", map[string]string{"id": "99999999999999999999"}, http.StatusBadRequest},
		{alice, "/api/rooms/lobby/read", map[string]string{}, http.StatusBadRequest},
		{alice, "/api/rooms/lobby/read", map[string]string{"id": said.ID, "room": "lobby"}, http.StatusBadRequest},
		{alice, "/api/conversations/nobody/read", map[string]string{"id": said.ID}, http.StatusNotFound},
		{alice, "/api/conversations/no.body/read", map[string]string{"id": said.ID}, http.StatusBadRequest},
		{alice, "/api/conversations/carol/read", map[string]string{"id": next(t, said.ID)}, http.StatusBadRequest},
	} {
		var e struct{ Error string }
		if got := c.who.Do("POST", c.path, c.body, &e); got != c.want || e.Error == "" {
			t.Errorf("%s POST %s %v: %d %q, want %d with an error", c.who.Name, c.path, c.body, got, e.Error, c.want)
		}
	}
	if head := alice.Say("lobby", "next"); head.ID != next(t, said.ID) {
		t.Fatalf("refused marks were logged: the next message has id %s after %s", head.ID, said.ID)
	}
}

// A private conversation is marked read by the other's name: the read
// event names it "with", reaches the marker's streams only, and
// GET /api/conversations counts the other's messages since.
func TestMarkConversationRead(t *testing.T) {
	srv := chattest.Start(t)
	alice, bob := srv.Login(t, "alice"), srv.Login(t, "bob")
	aliceS, bobS := alice.Stream(""), bob.Stream("")
	aliceS.Ready()
	bobS.Ready()
	var fromBob [2]chattest.Event
	for i := range fromBob {
		bob.MustDo("POST", "/api/users/alice/messages", map[string]string{"text": fmt.Sprint("hi ", i)}, &fromBob[i], 201)
	}
	var mine chattest.Event
	alice.MustDo("POST", "/api/users/bob/messages", map[string]string{"text": "hello"}, &mine, 201)

	if got := conversationReads(t, alice)["bob"]; got != (conversationRead{User: "bob", LastID: mine.ID, Read: "0", Unread: 2}) {
		t.Fatalf("alice's conversation with bob before any mark: %+v", got)
	}
	if got := conversationReads(t, bob)["alice"]; got.Read != "0" || got.Unread != 1 {
		t.Fatalf("bob's conversation with alice: %+v", got)
	}
	got := mark(t, alice, "/api/conversations/BOB/read", fromBob[0].ID)
	if got != (readAnswer{With: "bob", Read: fromBob[0].ID, Unread: 1}) {
		t.Fatalf("mark answered %+v, want with bob read %s unread 1", got, fromBob[0].ID)
	}
	f := aliceS.Expect("read", nil)
	if f.Event.With != "bob" || f.Event.Read != fromBob[0].ID || f.Event.Room != "" || f.Event.To != "" || f.ID != next(t, mine.ID) {
		t.Fatalf("alice's read event: %s (id %s)", f.Data, f.ID)
	}
	if got := conversationReads(t, alice)["bob"]; got.Read != fromBob[0].ID || got.Unread != 1 {
		t.Fatalf("alice's conversation with bob after the mark: %+v", got)
	}
	if got := conversationReads(t, bob)["alice"]; got.Read != "0" || got.Unread != 1 {
		t.Fatalf("alice's mark moved bob's conversation: %+v", got)
	}
	if got := mark(t, alice, "/api/conversations/bob/read", "1"); got.Read != fromBob[0].ID {
		t.Fatalf("a backward mark answered %+v", got)
	}
	// A conversation with oneself never has unread messages.
	alice.MustDo("POST", "/api/users/alice/messages", map[string]string{"text": "note to self"}, nil, 201)
	if got := conversationReads(t, alice)["alice"]; got.Read != "0" || got.Unread != 0 {
		t.Fatalf("alice's notes to herself: %+v", got)
	}
	var last chattest.Event
	bob.MustDo("POST", "/api/users/alice/messages", map[string]string{"text": "more"}, &last, 201)
	noReadEvents(t, "bob", bobS.Until(func(f chattest.Frame) bool { return f.ID == last.ID }))
	if got := conversationReads(t, alice)["bob"]; got.Unread != 2 || got.LastID != last.ID {
		t.Fatalf("alice's conversation with bob after his next message: %+v", got)
	}

	// History never holds read events.
	var history struct{ Messages []chattest.Event }
	alice.MustDo("GET", "/api/users/bob/messages", nil, &history, 200)
	if len(history.Messages) != 4 || history.Messages[3] != last {
		t.Fatalf("alice's history with bob: %+v", history.Messages)
	}
}

// A read event is logged: a stream that resumes from before it replays it
// (every device of the user catches up), and one of another user does not.
func TestReadEventsResume(t *testing.T) {
	srv := chattest.Start(t)
	alice, bob := srv.Login(t, "alice"), srv.Login(t, "bob")
	alice.Join("lobby")
	bob.Join("lobby")
	said := bob.Say("lobby", "hello")
	mark(t, alice, "/api/rooms/lobby/read", said.ID)
	after := bob.Say("lobby", "after the mark")

	frames := alice.Stream(said.ID).Until(func(f chattest.Frame) bool { return f.Kind == "ready" })
	if chattest.Kinds(frames) != fmt.Sprintf("read#%s message#%s ready#%s ", next(t, said.ID), after.ID, after.ID) {
		t.Fatalf("alice resumes with %s, want her read event, the message, ready", chattest.Kinds(frames))
	}
	if e := frames[0].Event; e.Room != "lobby" || e.Read != said.ID {
		t.Fatalf("alice replays %s", frames[0].Data)
	}
	frames = bob.Stream(said.ID).Until(func(f chattest.Frame) bool { return f.Kind == "ready" })
	if chattest.Kinds(frames) != fmt.Sprintf("message#%s ready#%s ", after.ID, after.ID) {
		t.Fatalf("bob resumes with %s, want only the message before ready", chattest.Kinds(frames))
	}
	var history struct{ Messages []chattest.Event }
	alice.MustDo("GET", "/api/rooms/lobby/messages", nil, &history, 200)
	if len(history.Messages) != 2 || history.Messages[0] != said || history.Messages[1] != after {
		t.Fatalf("room history: %+v", history.Messages)
	}
}
