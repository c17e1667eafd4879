package server_test

import (
	"slices"
	"testing"
	"time"

	"github.com/ssechat/ssechat/broker"
	"github.com/ssechat/ssechat/internal/chattest"
)

// waitCounts reads s until a members event gives room members members and
// online online, and returns the frames read.
func waitCounts(t testing.TB, s *chattest.Stream, room string, members, online int) []chattest.Frame {
	t.Helper()
	return s.Until(func(f chattest.Frame) bool {
		if f.Kind != "members" {
			return false
		}
		c := parseCounts(t, f)
		return c.Room == room && *c.Members == members && *c.Online == online
	})
}

// lastCounts returns the counts the last members event of room in frames
// gave, if any.
func lastCounts(t testing.TB, frames []chattest.Frame, room string) (counts, bool) {
	t.Helper()
	for _, f := range slices.Backward(frames) {
		if f.Kind == "members" {
			if c := parseCounts(t, f); c.Room == room {
				return c, true
			}
		}
	}
	return counts{}, false
}

// A large room's counts, like presence, are live state: a stream gets them
// in the snapshot after its ready, at its position, never in its backlog,
// and a resumed stream gets them as they are, not the recounts it missed.
// The members of a large room are counted, not listed: carol, online in
// the hall only, is in alice's counts but not in her presence snapshot;
// bob, who shares the small lobby with her, is in both.
func TestLargeRoomCountsAreLiveState(t *testing.T) {
	// Above two members a room is large. Recounts go out every 20 ms.
	srv := chattest.Start(t, chattest.WithBroker(broker.Config{LargeRoom: 2, MembersInterval: 20 * time.Millisecond}))
	alice, bob, carol, dave := srv.Login(t, "alice"), srv.Login(t, "bob"), srv.Login(t, "carol"), srv.Login(t, "dave")
	for _, c := range []*chattest.Client{alice, bob, carol, dave} {
		c.Join("hall")
	}
	alice.Join("lobby")
	bob.Join("lobby")
	bobS := bob.Stream("")
	untilLive(bobS, "bob")
	carolS := carol.Stream("")
	untilLive(carolS, "carol")
	waitCounts(t, bobS, "hall", 4, 2)

	// Her first stream puts her online; a second one's snapshot is then
	// exact: nobody's presence changes while it goes live.
	aliceTab := alice.Stream("")
	aliceTab.Ready()
	waitPresence(bobS, "alice", "online")
	waitCounts(t, bobS, "hall", 4, 3)
	aliceS := alice.Stream("")
	ready := aliceS.Until(isReady)
	checkIncreasing(t, 0, ready)
	rest := readSnapshot(aliceS, nil, func() string { return bob.Say("lobby", "hello").ID })
	_, snap := checkLiveSnapshot(t, ready[0].ID, rest, "alice", []string{"bob", "alice"}, []string{"hall"})
	if hall := snap["hall"]; *hall.Members != 4 || *hall.Online != 3 {
		t.Fatalf("snapshot counts of the hall %d members, %d online; want 4, and alice, bob and carol online", *hall.Members, *hall.Online)
	}
	onlyLiveBeforeMarker(t, rest)
	last := rest[len(rest)-1].ID

	// While she is away, carol goes offline: bob is sent a recount, which
	// is not logged.
	aliceTab.Close()
	aliceS.Close()
	waitPresence(bobS, "alice", "offline")
	carolS.Close()
	waitCounts(t, bobS, "hall", 4, 1)
	away := bob.Say("hall", "while she was away")

	resumed := alice.Stream(last)
	frames := untilReady(resumed)
	checkIncreasing(t, num(t, last), frames)
	if got := replayedEvents(t, frames[:len(frames)-1]); !slices.Equal(got, []chattest.Event{away}) {
		t.Fatalf("backlog %s, want only the message %s", chattest.Kinds(frames), away.ID)
	}
	// She comes online again with this stream: she may be in its snapshot
	// and its counts, or follow them.
	rest = readSnapshot(resumed, nil, func() string { return bob.Say("lobby", "welcome back").ID })
	_, snap = checkLiveSnapshot(t, away.ID, rest, "alice", []string{"bob"}, []string{"hall"})
	if hall := snap["hall"]; *hall.Members != 4 || (*hall.Online != 1 && *hall.Online != 2) {
		t.Fatalf("snapshot counts of the hall after the resume %d members, %d online; want 4, and bob and perhaps alice online", *hall.Members, *hall.Online)
	}
	onlyLiveBeforeMarker(t, rest)
	if c, ok := lastCounts(t, rest, "hall"); !ok || *c.Online != 2 {
		checkIncreasing(t, num(t, rest[len(rest)-1].ID), waitCounts(t, resumed, "hall", 4, 2))
	}
}
