//go:build unix

package cluster_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/ssechat/ssechat/internal/chattest"
)

type readAnswer struct {
	Room, With, Read string
	Unread           int
}

func markRead(t testing.TB, c *chattest.Client, path, id string) readAnswer {
	t.Helper()
	var a readAnswer
	c.MustDo("POST", path, map[string]string{"id": id}, &a, http.StatusOK)
	return a
}

// A read mark made on one instance reaches every stream of its user on
// both, in the log's order, and no stream of anyone else; both instances
// judge marks against the one marker, so it never goes back, even when
// marks race on the two instances.
func TestReadMarksAcrossInstances(t *testing.T) {
	c := startCluster(t)
	A, B := c.A.server(), c.B.server()
	alice := user(t, A, "alice", "lobby") // marks on A
	bob := user(t, B, "bob", "lobby")
	aliceB := alice.On(B)
	onA, onB, bobS := alice.Stream(""), aliceB.Stream(""), bob.Stream("")
	for _, s := range []*chattest.Stream{onA, onB, bobS} {
		s.Ready()
	}
	var said []chattest.Event
	for i := range 3 {
		said = append(said, bob.Say("lobby", fmt.Sprint("from B ", i)))
	}

	got := markRead(t, alice, "/api/rooms/lobby/read", said[1].ID)
	if got != (readAnswer{Room: "lobby", Read: said[1].ID, Unread: 1}) {
		t.Fatalf("mark on A answered %+v", got)
	}
	fa := onA.Expect("read", nil)
	fb := onB.Expect("read", nil)
	if fb.ID != fa.ID || fb.Event != fa.Event || fb.Event.Room != "lobby" || fb.Event.Read != said[1].ID {
		t.Fatalf("read event: %s (id %s) on A, %s (id %s) on B", fa.Data, fa.ID, fb.Data, fb.ID)
	}
	// B knows A's mark: a lower one changes nothing, and the listing
	// agrees.
	if got := markRead(t, aliceB, "/api/rooms/lobby/read", said[0].ID); got.Read != said[1].ID || got.Unread != 1 {
		t.Fatalf("a backward mark on B answered %+v, want the marker A set", got)
	}
	var rooms struct {
		Rooms []struct {
			Room   string
			Read   *string
			Unread *int
		}
	}
	aliceB.MustDo("GET", "/api/rooms", nil, &rooms, http.StatusOK)
	if len(rooms.Rooms) != 1 || rooms.Rooms[0].Read == nil || *rooms.Rooms[0].Read != said[1].ID || *rooms.Rooms[0].Unread != 1 {
		t.Fatalf("GET /api/rooms on B: %+v", rooms.Rooms)
	}

	// A conversation marked on B reaches the stream on A.
	var p chattest.Event
	bob.MustDo("POST", "/api/users/alice/messages", map[string]string{"text": "psst"}, &p, http.StatusCreated)
	if got := markRead(t, aliceB, "/api/conversations/bob/read", p.ID); got != (readAnswer{With: "bob", Read: p.ID}) {
		t.Fatalf("conversation mark on B answered %+v", got)
	}
	if f := onA.Expect("read", nil); f.Event.With != "bob" || f.Event.Read != p.ID || num(t, f.ID) <= num(t, fa.ID) {
		t.Fatalf("the stream on A got %s (id %s)", f.Data, f.ID)
	}

	// Marks race on both instances, each for another message: every
	// read event either stream gets moves the marker forward, and the
	// marker ends at the highest.
	for i := range 10 {
		said = append(said, bob.Say("lobby", fmt.Sprint("more ", i)))
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(said))
	for i, e := range said[2:] {
		base := c.A.URL
		if i%2 == 1 {
			base = c.B.URL
		}
		wg.Go(func() {
			status, data, err := send(base, alice.Token, "POST", "/api/rooms/lobby/read", map[string]string{"id": e.ID})
			if err == nil && status != http.StatusOK {
				err = fmt.Errorf("mark %s: status %d: %s", e.ID, status, data)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	top := said[len(said)-1].ID
	if got := markRead(t, alice, "/api/rooms/lobby/read", top); got.Read != top || got.Unread != 0 {
		t.Fatalf("after the race the marker is %+v, want %s", got, top)
	}
	for name, s := range map[string]*chattest.Stream{"A": onA, "B": onB} {
		var marks []int64
		frames := s.Until(func(f chattest.Frame) bool { return f.Kind == "read" && f.Event.Read == top })
		checkIncreasing(t, "alice on "+name, num(t, said[2].ID), logEvents(frames))
		for _, f := range frames {
			// The stream on B may still hold the conversation's mark above.
			if f.Kind == "read" && f.Event.Room == "lobby" {
				marks = append(marks, num(t, f.Event.Read))
			}
		}
		if !slices.IsSorted(marks) || len(slices.Compact(slices.Clone(marks))) != len(marks) {
			t.Fatalf("alice's stream on %s got marks %v: each must move the marker forward", name, marks)
		}
	}

	// Bob, on B with alice's marks, never saw one.
	last := alice.Say("lobby", "done")
	for _, f := range untilID(t, bobS, num(t, last.ID)) {
		if f.Kind == "read" {
			t.Fatalf("bob's stream got alice's read event %s", f.Data)
		}
	}

	// Resuming on A from before the first mark replays alice's read
	// events there; bob's resume has none.
	after := said[1].ID
	var replayed []string
	for _, f := range resumed(t, alice.Stream(after)) {
		if f.Kind == "read" {
			replayed = append(replayed, f.Event.Read)
		}
	}
	if len(replayed) < 2 || replayed[0] != said[1].ID || replayed[1] != p.ID {
		t.Fatalf("alice resumes on A with marks %v, want %s and %s first", replayed, said[1].ID, p.ID)
	}
	for _, f := range resumed(t, bob.On(A).Stream(after)) {
		if f.Kind == "read" {
			t.Fatalf("bob resumes with alice's read event %s", f.Data)
		}
	}
}
