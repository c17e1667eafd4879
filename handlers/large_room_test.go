package handlers_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ssechat/ssechat/broker"
	"github.com/ssechat/ssechat/internal/chattest"
)

// Above LargeRoom members a room trades per-user join, leave and presence
// notices for a members event with counts, so that a crowd arriving costs
// O(members), not O(members²).
func TestLargeRoomSendsCountsInsteadOfNotices(t *testing.T) {
	srv := chattest.Start(t, chattest.WithBroker(broker.Config{LargeRoom: 2, MembersInterval: 10 * time.Millisecond}))
	alice, bob, carol, dave := srv.Login(t, "alice"), srv.Login(t, "bob"), srv.Login(t, "carol"), srv.Login(t, "dave")
	alice.Join("hall")
	aliceS := alice.Stream("")
	position := aliceS.Ready()
	bob.Join("hall")
	aliceS.Expect("join", func(e chattest.Event) bool { return e.User == "bob" }) // 2 members: still small

	var state struct {
		Room    string
		Count   int
		Members []struct{ Username string }
	}
	carol.MustDo("POST", "/api/rooms/hall/join", nil, &state, 200)
	if state.Count != 3 || len(state.Members) != 0 {
		t.Fatalf("joining a large room answered %+v, want count 3 and no member list", state)
	}
	counts := aliceS.Expect("members", func(e chattest.Event) bool { return e.Room == "hall" })
	if !strings.Contains(counts.Data, `"members":3`) || !strings.Contains(counts.Data, `"online":1`) {
		t.Fatalf("members event %s, want 3 members, 1 online", counts.Data)
	}
	carolS := carol.Stream("")
	carolS.Ready()
	// Alice gets the new online count rather than carol's presence.
	aliceS.Expect("members", func(e chattest.Event) bool { return e.Room == "hall" })
	dave.Join("hall")
	marker := bob.Say("hall", "marker")
	frames := aliceS.Until(func(f chattest.Frame) bool { return f.ID == marker.ID })
	for _, f := range frames {
		if f.Kind == "join" || f.Kind == "presence" && f.Event.User != "alice" {
			t.Fatalf("large room sent a per-user notice: %s %s", f.Kind, f.Data)
		}
	}

	// Resuming gives what live delivery gave: no per-user notices either.
	aliceS.Close()
	resumed := alice.Stream(position)
	replayed := resumed.Until(func(f chattest.Frame) bool { return f.Kind == "ready" })
	for _, f := range replayed {
		if f.Kind == "presence" && f.Event.User != "alice" || f.Kind == "join" && f.Event.User != "bob" {
			t.Fatalf("replay sent a notice live delivery did not: %s %s (all: %s)", f.Kind, f.Data, chattest.Kinds(replayed))
		}
	}
	if !strings.Contains(chattest.Kinds(replayed), "message#"+marker.ID) {
		t.Fatalf("replay lacks the marker: %s", chattest.Kinds(replayed))
	}
}
