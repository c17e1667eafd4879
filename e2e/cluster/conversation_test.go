//go:build unix

package cluster_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/ssechat/ssechat/internal/chattest"
)

// A conversation whose users' streams and POSTs are on different instances
// goes as on one server: room and private messages, joins and leaves,
// presence, each event with the same id on every stream. Then the same
// through nginx, which spreads the requests over both.
func TestConversationAcrossInstances(t *testing.T) {
	c := startCluster(t)
	A, B := c.A.server(), c.B.server()
	alice := user(t, A, "alice", "lobby") // streams and writes on A
	bob := user(t, B, "bob", "lobby")     // streams and writes on B
	carol := user(t, B, "carol")          // not in the lobby yet

	aliceS := alice.Stream("")
	aliceS.Ready()
	waitPresence(aliceS, "alice", "online")
	bobS := bob.Stream("")
	bobS.Ready()
	// Bob's stream on B reaches alice on A as a notice; alice's stream on
	// A, opened before his, is known on B.
	waitPresence(aliceS, "bob", "online")
	chattest.Eventually(t, "B to list alice online", func() bool { return online(t, bob, "lobby", "alice") })
	chattest.Eventually(t, "A to list bob online", func() bool { return online(t, alice, "lobby", "bob") })

	// expect checks that every stream gets e, the event a POST answered,
	// exactly as answered (same id, same ts).
	expect := func(kind string, e chattest.Event, streams ...*chattest.Stream) {
		t.Helper()
		for i, s := range streams {
			f := s.Expect(kind, func(got chattest.Event) bool { return got.ID == e.ID })
			if f.Event != e || f.ID != e.ID {
				t.Fatalf("stream %d: %s %s is %+v, the POST answered %+v", i, kind, f.ID, f.Event, e)
			}
		}
	}
	expect("message", bob.Say("lobby", "hello from B"), aliceS, bobS)
	expect("message", alice.Say("lobby", "hello from A"), aliceS, bobS)

	// Private messages, by their route and by @name in a room.
	var p chattest.Event
	alice.MustDo("POST", "/api/users/bob/messages", map[string]string{"text": "psst, from A"}, &p, http.StatusCreated)
	expect("private", p, aliceS, bobS)
	var at chattest.Event
	bob.MustDo("POST", "/api/rooms/lobby/messages", map[string]string{"text": "@alice only you, from B"}, &at, http.StatusCreated)
	if at.To != "alice" || at.Text != "only you, from B" {
		t.Fatalf("@alice answered %+v", at)
	}
	expect("private", at, aliceS, bobS)
	// Carol, on the other instance from alice, sees none of it: the first
	// event of her stream is the private message meant for her.
	carolS := carol.On(A).Stream("")
	carolS.Ready()
	var forCarol chattest.Event
	bob.MustDo("POST", "/api/users/carol/messages", map[string]string{"text": "hi carol"}, &forCarol, http.StatusCreated)
	if f := carolS.Until(isLogEvent); f[len(f)-1].Event != forCarol {
		t.Fatalf("carol's first event is %s %s, want her private message %s", f[len(f)-1].Kind, f[len(f)-1].Data, forCarol.ID)
	}

	// Carol joins on B, speaks on A, leaves on A: both see it all, with
	// the same ids.
	carol.Join("lobby")
	joinA := aliceS.Expect("join", func(e chattest.Event) bool { return e.User == "carol" })
	joinB := bobS.Expect("join", func(e chattest.Event) bool { return e.User == "carol" })
	if joinA.ID != joinB.ID || joinA.Event != joinB.Event {
		t.Fatalf("carol's join: %s on A, %s on B", joinA.Data, joinB.Data)
	}
	carolA := carol.On(A)
	expect("message", carolA.Say("lobby", "hi all, carol here"), aliceS, bobS)
	if got := carolA.Do("POST", "/api/rooms/lobby/leave", nil, nil); got != http.StatusOK && got != http.StatusNoContent {
		t.Fatalf("carol's leave: status %d", got)
	}
	leaveA := aliceS.Expect("leave", func(e chattest.Event) bool { return e.User == "carol" })
	leaveB := bobS.Expect("leave", func(e chattest.Event) bool { return e.User == "carol" })
	if leaveA.ID != leaveB.ID || leaveA.Event != leaveB.Event || num(t, leaveA.ID) <= num(t, joinA.ID) {
		t.Fatalf("carol's leave: %s on A, %s on B (join %s)", leaveA.Data, leaveB.Data, joinA.ID)
	}

	// Bob's only stream closes on B: alice, on A, sees him go offline.
	bobS.Close()
	waitPresence(aliceS, "bob", "offline")
	chattest.Eventually(t, "A to list bob offline", func() bool { return !online(t, alice, "lobby", "bob") })

	// Through nginx: dave logs in, joins, opens two tabs and talks, each
	// request on whichever instance round robin picks.
	lb := c.LB.server()
	dave := user(t, lb, "dave", "lobby")
	tabs := []*chattest.Stream{dave.Stream(""), dave.Stream("")}
	for _, s := range tabs {
		s.Ready()
	}
	var said []chattest.Event
	for i := range 10 {
		said = append(said, dave.Say("lobby", fmt.Sprintf("via nginx %d", i)))
	}
	last := num(t, said[len(said)-1].ID)
	for i, s := range append(tabs, aliceS) {
		var got []chattest.Event
		for _, f := range untilID(t, s, last) {
			if f.Kind == "message" && f.Event.From == "dave" {
				got = append(got, f.Event)
			}
		}
		if !slices.Equal(got, said) {
			t.Fatalf("stream %d got dave's messages %v, he was answered %v", i, got, said)
		}
	}
	// No stickiness: nginx sent dave's POSTs to both instances.
	used := map[string]bool{}
	for _, tried := range c.LB.upstreamsOf("POST /api/rooms/lobby/messages") {
		used[tried] = true
	}
	if !used[c.A.Addr] || !used[c.B.Addr] {
		t.Fatalf("nginx sent the POSTs to %v, want both %s and %s", used, c.A.Addr, c.B.Addr)
	}
}
