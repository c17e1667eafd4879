//go:build unix

package cluster_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/ssechat/ssechat/internal/chattest"
)

// A Last-Event-ID from one instance resumes on the other with exactly what
// was missed, whichever instance wrote it: no gap, no duplicate, then live.
func TestResumeOnTheOtherInstance(t *testing.T) {
	c := startCluster(t)
	A, B := c.A.server(), c.B.server()
	alice := user(t, A, "alice", "lobby")
	bob := user(t, B, "bob", "lobby")
	bobA := bob.On(A)
	// Bob's stream sees all that alice's would: the lobby, and the private
	// messages between them.
	watch := bob.Stream("")
	watch.Ready()

	s := alice.Stream("")
	s.Ready()
	var last chattest.Event
	for i := range 6 {
		last = []*chattest.Client{bob, bobA}[i%2].Say("lobby", fmt.Sprintf("seen %d", i))
	}
	read := untilID(t, s, num(t, last.ID))
	position := read[len(read)-1].ID
	s.Close()

	// While alice is away: messages written on both instances, a private
	// message, a join.
	for i := range 10 {
		[]*chattest.Client{bob, bobA}[i%2].Say("lobby", fmt.Sprintf("missed %d", i))
	}
	bobA.MustDo("POST", "/api/users/alice/messages", map[string]string{"text": "missed, privately"}, nil, http.StatusCreated)
	user(t, B, "carol", "lobby")
	final := bob.Say("lobby", "missed, the last")
	var want []chattest.Frame
	for _, f := range logEvents(untilID(t, watch, num(t, final.ID))) {
		if num(t, f.ID) > num(t, position) {
			want = append(want, f)
		}
	}
	if len(want) != 13 {
		t.Fatalf("bob saw %d events after %s, want 13: %s", len(want), position, chattest.Kinds(want))
	}

	// Alice comes back on B.
	s = alice.On(B).Stream(position)
	backlog := resumed(t, s)
	checkIncreasing(t, "the resume on B", num(t, position), backlog)
	sameEvents(t, "the resume on B", logEvents(backlog), want)
	// Then live, with nothing repeated: the next log event is the next
	// message.
	live := bobA.Say("lobby", "live after the resume")
	if next := s.Until(isLogEvent); next[len(next)-1].Event != live {
		t.Fatalf("after the resume came %s, want the live message %s", chattest.Kinds(next), live.ID)
	}

	// The same from the middle, with the query parameter, on A.
	mid := want[len(want)/2-1].ID
	req, _ := http.NewRequest("GET", c.A.URL+"/api/stream?last_event_id="+url.QueryEscape(mid), nil)
	req.Header.Set("Authorization", "Bearer "+alice.Token)
	s = chattest.OpenStream(t, req)
	backlog = resumed(t, s)
	wantFromMid := slices.DeleteFunc(slices.Clone(want), func(f chattest.Frame) bool { return num(t, f.ID) <= num(t, mid) })
	wantFromMid = append(wantFromMid, chattest.Frame{ID: live.ID, Kind: "message", Event: live})
	sameEvents(t, "the resume on A from "+mid, logEvents(backlog), wantFromMid)
}

// sameEvents fails unless got and want are the same events (kind, id and
// JSON), in the same order.
func sameEvents(t testing.TB, who string, got, want []chattest.Frame) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %s, want %s", who, chattest.Kinds(got), chattest.Kinds(want))
	}
	for i := range got {
		if got[i].Kind != want[i].Kind || got[i].ID != want[i].ID || got[i].Event != want[i].Event {
			t.Fatalf("%s: event %d is %s %s %s, want %s %s %s", who, i,
				got[i].Kind, got[i].ID, got[i].Data, want[i].Kind, want[i].ID, want[i].Data)
		}
	}
}
