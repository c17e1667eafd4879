package handlers_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ssechat/ssechat/internal/chattest"
)

// "@name text" in a room reaches name only if name is a member of that
// room: anyone else (unknown, never joined, left) is a 404 with a clear
// error, and nothing is sent. A direct message reaches anyone.
func TestMentionReachesOnlyMembersOfTheRoom(t *testing.T) {
	srv := chattest.Start(t)
	alice, bob, carol, dave := srv.Login(t, "alice"), srv.Login(t, "bob"), srv.Login(t, "carol"), srv.Login(t, "dave")
	alice.Join("lobby")
	bob.Join("lobby")
	carol.Join("den")
	dave.Join("lobby")
	dave.MustDo("POST", "/api/rooms/lobby/leave", nil, nil, http.StatusNoContent)
	bobS, carolS, daveS := bob.Stream(""), carol.Stream(""), dave.Stream("")
	for _, s := range []*chattest.Stream{bobS, carolS, daveS} {
		s.Ready()
	}

	for _, tc := range []struct{ text, name string }{
		{"@carol the plan", "carol"},     // a member of another room
		{"@CAROL the plan", "CAROL"},     // in any case
		{"@dave the plan", "dave"},       // left the room
		{"@nobody the plan", "nobody"},   // no such user: the same answer
		{"@carol-x the plan", "carol-x"}, // a valid name nobody has
	} {
		var e struct{ Error string }
		alice.MustDo("POST", "/api/rooms/lobby/messages", map[string]string{"text": tc.text}, &e, http.StatusNotFound)
		want := `"` + tc.name + `" is not a member of room "lobby": nothing was sent`
		if e.Error != want {
			t.Errorf("%q: error %q, want %q", tc.text, e.Error, want)
		}
	}

	// A member is reached, by any spelling of the name.
	got := alice.Say("lobby", "@BOB the plan")
	if got.To != "bob" || got.Text != "the plan" || got.Room != "" {
		t.Fatalf("@BOB answered %+v", got)
	}
	if f := bobS.Expect("private", nil); f.ID != got.ID {
		t.Fatalf("bob got %+v", f.Event)
	}
	// Direct messages reach anyone, members of the room or not. Each is
	// the first private event its recipient sees: the refused mentions
	// sent nothing.
	for _, to := range []struct {
		c *chattest.Client
		s *chattest.Stream
	}{{carol, carolS}, {dave, daveS}} {
		var sent chattest.Event
		alice.MustDo("POST", "/api/users/"+to.c.Name+"/messages", map[string]string{"text": "direct"}, &sent, 201)
		if f := to.s.Expect("private", nil); f.ID != sent.ID || f.Event.Text != "direct" {
			t.Fatalf("%s's first private event: %+v, want the direct message %s", to.c.Name, f.Event, sent.ID)
		}
		var page struct{ Messages []chattest.Event }
		to.c.MustDo("GET", "/api/users/alice/messages", nil, &page, 200)
		if len(page.Messages) != 1 || strings.Contains(page.Messages[0].Text, "plan") {
			t.Fatalf("%s's conversation with alice: %+v", to.c.Name, page.Messages)
		}
	}
	// The sender must be a member too (403), checked first.
	carol.MustDo("POST", "/api/rooms/lobby/messages", map[string]string{"text": "@bob hi"}, nil, http.StatusForbidden)
}
