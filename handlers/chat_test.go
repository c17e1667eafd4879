package handlers_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssechat/ssechat/internal/chattest"
)

func TestRoomBroadcastReachesMembersOnly(t *testing.T) {
	srv := chattest.Start(t)
	alice, bob, carol := srv.Login(t, "alice"), srv.Login(t, "bob"), srv.Login(t, "carol")
	alice.Join("lobby")
	bob.Join("lobby")
	aliceTab1, aliceTab2 := alice.Stream(""), alice.Stream("")
	bobStream, carolStream := bob.Stream(""), carol.Stream("")
	for _, s := range []*chattest.Stream{aliceTab1, aliceTab2, bobStream, carolStream} {
		s.Ready()
	}

	sent := alice.Say("lobby", "hello lobby")
	if sent.ID == "" || sent.Room != "lobby" || sent.From != "alice" || sent.Text != "hello lobby" {
		t.Fatalf("POST answered %+v", sent)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", sent.TS); err != nil {
		t.Fatalf("ts %q is not RFC 3339 UTC with milliseconds", sent.TS)
	}
	for name, s := range map[string]*chattest.Stream{"alice tab 1": aliceTab1, "alice tab 2": aliceTab2, "bob": bobStream} {
		got := s.Expect("message", nil)
		if got.ID != sent.ID || got.Event != sent {
			t.Errorf("%s got %+v (id line %q), want %+v", name, got.Event, got.ID, sent)
		}
	}
	// Carol is not in the room: the private message sent after the room
	// message is the first thing that reaches her.
	bob.MustDo("POST", "/api/users/carol/messages", map[string]string{"text": "psst"}, nil, 201)
	if f := carolStream.Expect("private", nil); f.Event.Text != "psst" {
		t.Fatalf("carol got %+v", f.Event)
	}
	carol.MustDo("POST", "/api/rooms/lobby/messages", map[string]string{"text": "let me in"}, nil, http.StatusForbidden)
}

func TestPrivateMessagesReachOnlyTheTwo(t *testing.T) {
	srv := chattest.Start(t)
	alice, bob, carol := srv.Login(t, "alice"), srv.Login(t, "bob"), srv.Login(t, "carol")
	for _, c := range []*chattest.Client{alice, bob, carol} {
		c.Join("lobby")
	}
	aliceS, bobS, carolS := alice.Stream(""), bob.Stream(""), carol.Stream("")
	aliceS.Ready()
	bobS.Ready()
	carolS.Ready()

	mention := alice.Say("lobby", "@Bob meet at noon")
	if mention.To != "bob" || mention.From != "alice" || mention.Text != "meet at noon" || mention.Room != "" {
		t.Fatalf("@mention answered %+v, want a private event to bob", mention)
	}
	var direct chattest.Event
	bob.MustDo("POST", "/api/users/alice/messages", map[string]string{"text": "ok"}, &direct, 201)
	for name, s := range map[string]*chattest.Stream{"alice": aliceS, "bob": bobS} {
		if got := s.Expect("private", nil); got.Event != mention {
			t.Errorf("%s first private %+v, want %+v", name, got.Event, mention)
		}
		if got := s.Expect("private", nil); got.Event != direct {
			t.Errorf("%s second private %+v, want %+v", name, got.Event, direct)
		}
	}
	marker := alice.Say("lobby", "public marker")
	frames := carolS.Until(func(f chattest.Frame) bool { return f.Kind == "message" && f.ID == marker.ID })
	for _, f := range frames {
		if f.Kind == "private" || strings.Contains(f.Data, "noon") {
			t.Fatalf("carol saw a private message: %s", f.Data)
		}
	}
	alice.MustDo("POST", "/api/rooms/lobby/messages", map[string]string{"text": "@nobody hi"}, nil, http.StatusNotFound)
	alice.MustDo("POST", "/api/users/nobody/messages", map[string]string{"text": "hi"}, nil, http.StatusNotFound)

	var history struct{ Messages []chattest.Event }
	bob.MustDo("GET", "/api/users/alice/messages", nil, &history, 200)
	if len(history.Messages) != 2 || history.Messages[0] != mention || history.Messages[1] != direct {
		t.Fatalf("bob's history with alice: %+v", history.Messages)
	}
	carol.MustDo("GET", "/api/users/alice/messages", nil, &history, 200)
	if len(history.Messages) != 0 {
		t.Fatalf("carol sees alice's private history: %+v", history.Messages)
	}
	var convs struct {
		Conversations []struct {
			User   string `json:"user"`
			LastID string `json:"last_id"`
		}
	}
	alice.MustDo("GET", "/api/conversations", nil, &convs, 200)
	if len(convs.Conversations) != 1 || convs.Conversations[0].User != "bob" || convs.Conversations[0].LastID != direct.ID {
		t.Fatalf("alice's conversations: %+v", convs)
	}
}

func TestJoinLeaveAndPresence(t *testing.T) {
	srv := chattest.Start(t)
	alice, bob := srv.Login(t, "alice"), srv.Login(t, "bob")
	bob.Join("lobby")
	bobS := bob.Stream("")
	bobS.Ready()

	var joined struct {
		Room    string
		Members []struct {
			Username string
			Online   bool
		}
	}
	alice.MustDo("POST", "/api/rooms/lobby/join", nil, &joined, 200)
	if joined.Room != "lobby" || len(joined.Members) != 2 || !joined.Members[1].Online || joined.Members[0].Online {
		t.Fatalf("join answered %+v, want alice offline and bob online", joined)
	}
	bobS.Expect("join", func(e chattest.Event) bool { return e.User == "alice" && e.Room == "lobby" })
	alice.Join("lobby") // idempotent: no second join event

	aliceS := alice.Stream("")
	aliceS.Ready()
	online := bobS.Expect("presence", func(e chattest.Event) bool { return e.User == "alice" })
	if online.Event.Status != "online" {
		t.Fatalf("first presence of alice: %+v", online.Event)
	}
	alice.MustDo("GET", "/api/rooms/lobby/members", nil, &joined, 200)
	if !joined.Members[0].Online {
		t.Fatalf("members: alice not online: %+v", joined.Members)
	}
	aliceS.Close()
	offline := bobS.Expect("presence", func(e chattest.Event) bool { return e.User == "alice" })
	if offline.Event.Status != "offline" {
		t.Fatalf("after closing her stream alice is %q", offline.Event.Status)
	}
	alice.MustDo("POST", "/api/rooms/lobby/leave", nil, nil, http.StatusNoContent)
	left := bobS.Until(func(f chattest.Frame) bool { return f.Kind == "leave" })
	if kinds := chattest.Kinds(left); strings.Contains(kinds, "join") {
		t.Fatalf("a repeated join published an event: %s", kinds)
	}
	alice.MustDo("POST", "/api/rooms/lobby/leave", nil, nil, http.StatusNoContent)

	var rooms struct {
		Rooms []struct {
			Room    string
			Members int
		}
	}
	bob.MustDo("GET", "/api/rooms", nil, &rooms, 200)
	if len(rooms.Rooms) != 1 || rooms.Rooms[0].Room != "lobby" || rooms.Rooms[0].Members != 1 {
		t.Fatalf("rooms: %+v", rooms)
	}
	alice.MustDo("GET", "/api/rooms/lobby/messages", nil, nil, http.StatusForbidden)
	alice.MustDo("GET", "/api/rooms/nowhere/members", nil, nil, http.StatusNotFound)
}

func TestRoomHistoryPages(t *testing.T) {
	srv := chattest.Start(t)
	alice, bob := srv.Login(t, "alice"), srv.Login(t, "bob")
	alice.Join("lobby")
	var sent []chattest.Event
	for _, text := range []string{"one", "two", "three", "four", "five"} {
		sent = append(sent, alice.Say("lobby", text))
	}
	var page struct{ Messages []chattest.Event }
	alice.MustDo("GET", "/api/rooms/lobby/messages?limit=2", nil, &page, 200)
	if len(page.Messages) != 2 || page.Messages[0] != sent[3] || page.Messages[1] != sent[4] {
		t.Fatalf("newest page: %+v", page.Messages)
	}
	alice.MustDo("GET", "/api/rooms/lobby/messages?limit=2&before="+page.Messages[0].ID, nil, &page, 200)
	if len(page.Messages) != 2 || page.Messages[0] != sent[1] || page.Messages[1] != sent[2] {
		t.Fatalf("older page: %+v", page.Messages)
	}
	alice.MustDo("GET", "/api/rooms/lobby/messages", nil, &page, 200)
	if len(page.Messages) != 5 {
		t.Fatalf("default page has %d messages, want 5", len(page.Messages))
	}
	bob.MustDo("GET", "/api/rooms/lobby/messages", nil, nil, http.StatusForbidden)
	bob.Join("lobby")
	bob.MustDo("GET", "/api/rooms/lobby/messages", nil, &page, 200)
}

func TestUsernamesAreCaseInsensitive(t *testing.T) {
	srv := chattest.Start(t)
	srv.Login(t, "Alice")
	anon := srv.Anonymous(t)
	var out struct{ Username string }
	anon.MustDo("POST", "/api/login", map[string]string{"username": "alice", "password": "pw-Alice"}, &out, 200)
	if out.Username != "Alice" {
		t.Fatalf("login as alice answered username %q, want the registered Alice", out.Username)
	}
	anon.MustDo("POST", "/api/login", map[string]string{"username": "ALICE", "password": "not hers"}, nil, http.StatusUnauthorized)
}

func TestLogoutEndsTheSession(t *testing.T) {
	srv := chattest.Start(t)
	alice := srv.Login(t, "alice")
	alice.MustDo("GET", "/api/me", nil, nil, 200)
	alice.MustDo("POST", "/api/logout", nil, nil, http.StatusNoContent)
	alice.MustDo("GET", "/api/me", nil, nil, http.StatusUnauthorized)
	alice.MustDo("GET", "/api/stream", nil, nil, http.StatusUnauthorized)
	alice.MustDo("POST", "/api/rooms/lobby/join", nil, nil, http.StatusUnauthorized)
}

func TestForgedOrMissingTokenIsRefused(t *testing.T) {
	srv := chattest.Start(t)
	srv.Login(t, "alice")
	for _, token := range []string{"", "not-a-token", "00000000-0000-4000-8000-000000000000"} {
		c := srv.Anonymous(t)
		c.Token = token
		var body struct{ Error string }
		if got := c.Do("GET", "/api/stream", nil, &body); got != http.StatusUnauthorized || body.Error == "" {
			t.Errorf("token %q: status %d, error %q; want 401 with a message", token, got, body.Error)
		}
		c.MustDo("POST", "/api/rooms/lobby/messages", map[string]string{"text": "hi"}, nil, http.StatusUnauthorized)
	}
}

func TestSessionsAndMembershipsSurviveRestart(t *testing.T) {
	dir := t.TempDir() + "/chat.db"
	first := chattest.Start(t, chattest.WithDB(dir))
	alice := first.Login(t, "alice")
	alice.Join("lobby")
	said := alice.Say("lobby", "before restart")
	first.Close()

	second := chattest.Start(t, chattest.WithDB(dir))
	again := second.Anonymous(t)
	again.Token, again.Name = alice.Token, "alice"
	var page struct{ Messages []chattest.Event }
	again.MustDo("GET", "/api/rooms/lobby/messages", nil, &page, 200)
	if len(page.Messages) != 1 || page.Messages[0] != said {
		t.Fatalf("history after restart: %+v", page.Messages)
	}
	if next := again.Say("lobby", "after restart"); next.ID <= said.ID && len(next.ID) <= len(said.ID) {
		t.Fatalf("id after restart %s not above %s", next.ID, said.ID)
	}
}

// Logins that arrive together share commits; each still succeeds or fails
// on its own, and of many racing to register one name exactly one wins.
func TestConcurrentLoginsAndRegistrationRace(t *testing.T) {
	srv := chattest.Start(t)
	var wg sync.WaitGroup
	statuses := make([]int, 150)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name, password := fmt.Sprintf("user%d", i), "pw"
			if i >= 100 {
				name, password = "Contested", fmt.Sprintf("pw%d", i)
			}
			statuses[i] = srv.Anonymous(t).Do("POST", "/api/login", map[string]string{"username": name, "password": password}, nil)
		}()
	}
	wg.Wait()
	winners := 0
	for i, status := range statuses {
		switch {
		case i < 100 && status != http.StatusOK:
			t.Errorf("login of user%d: status %d", i, status)
		case i >= 100 && status == http.StatusOK:
			winners++
		case i >= 100 && status != http.StatusUnauthorized:
			t.Errorf("racing registration: status %d, want 200 or 401", status)
		}
	}
	if winners != 1 {
		t.Fatalf("%d registrations of one name succeeded, want 1", winners)
	}
}

// Joining a room while online tells its members so, right after the join,
// and tells the newcomer who in the room is online: until they shared a
// room, neither had heard of the other's presence.
func TestJoinTellsPresenceBothWays(t *testing.T) {
	srv := chattest.Start(t)
	alice, bob := srv.Login(t, "alice"), srv.Login(t, "bob")
	alice.Join("lobby")
	bob.Join("den")
	aliceS, bobS := alice.Stream(""), bob.Stream("")
	aliceS.Ready()
	bobS.Ready()
	aliceS.Expect("presence", func(e chattest.Event) bool { return e.User == "alice" && e.Status == "online" })
	bobS.Expect("presence", func(e chattest.Event) bool { return e.User == "bob" && e.Status == "online" })

	bob.Join("lobby")
	join := aliceS.Expect("join", func(e chattest.Event) bool { return e.User == "bob" })
	told := aliceS.Next()
	if told.Kind != "presence" || told.Event.User != "bob" || told.Event.Status != "online" || told.ID != join.ID {
		t.Fatalf("after bob's join alice got %s %s, want bob online at the join's id %s", told.Kind, told.Data, join.ID)
	}
	bobS.Expect("presence", func(e chattest.Event) bool { return e.User == "alice" && e.Status == "online" && e.ID == join.ID })
}

// A room's member list comes a page at a time, by name; next is the
// cursor of the following page, empty on the last.
func TestMembersArePaged(t *testing.T) {
	srv := chattest.Start(t)
	var first *chattest.Client
	for _, name := range []string{"eve", "bob", "dan", "alice", "carol"} {
		c := srv.Login(t, name)
		c.Join("lobby")
		if first == nil {
			first = c
		}
	}
	type page struct {
		Members []struct{ Username string }
		Next    string
	}
	var got []string
	after := ""
	for range 4 {
		var p page
		first.MustDo("GET", "/api/rooms/lobby/members?limit=2&after="+after, nil, &p, http.StatusOK)
		for _, m := range p.Members {
			got = append(got, m.Username)
		}
		if p.Next == "" {
			break
		}
		after = p.Next
	}
	if want := []string{"alice", "bob", "carol", "dan", "eve"}; !slices.Equal(got, want) {
		t.Fatalf("pages gave %v, want %v", got, want)
	}
	for _, bad := range []string{"?limit=0", "?limit=501", "?after=no%20spaces"} {
		first.MustDo("GET", "/api/rooms/lobby/members"+bad, nil, nil, http.StatusBadRequest)
	}
}
