package server_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ssechat/ssechat/internal/chattest"
)

// A user who was away gets exactly what they missed, in order, then the
// presence snapshot as it is now, then live events, whether the position
// comes in the header or the query. Nobody's presence is replayed: carol,
// who went offline while alice was away, is simply absent from the
// snapshot, and bob, still online, is in it.
func TestResumeAfterDisconnect(t *testing.T) {
	for _, via := range resumeVia {
		t.Run(via, func(t *testing.T) {
			srv := chattest.Start(t)
			alice, bob, carol := srv.Login(t, "alice"), srv.Login(t, "bob"), srv.Login(t, "carol")
			for _, c := range []*chattest.Client{alice, bob, carol} {
				c.Join("lobby")
			}
			bobS := bob.Stream("")
			untilLive(bobS, "bob")
			carolS := carol.Stream("")
			untilLive(carolS, "carol")
			waitPresence(bobS, "carol", "online")
			aliceS := alice.Stream("")
			aliceS.Ready()
			// Her own online notice: closing before the server took her
			// coming online in would publish no presence at all.
			waitPresence(aliceS, "alice", "online")
			before := alice.Say("lobby", "before the lid closed")
			last := aliceS.Expect("message", func(e chattest.Event) bool { return e.ID == before.ID }).ID
			aliceS.Close()
			waitPresence(bobS, "alice", "offline")
			carolS.Close()
			waitPresence(bobS, "carol", "offline")

			var missed []chattest.Event
			for i := range 20 {
				missed = append(missed, bob.Say("lobby", fmt.Sprintf("while away %d", i)))
			}
			var private chattest.Event
			bob.MustDo("POST", "/api/users/alice/messages", map[string]string{"text": "psst"}, &private, 201)
			missed = append(missed, private)

			resumed := open(t, srv.URL, alice, via, last)
			frames := untilReady(resumed)
			checkIncreasing(t, num(t, last), frames)
			got := replayedEvents(t, frames[:len(frames)-1])
			if !slices.Equal(got, missed) {
				t.Fatalf("resumed backlog:\n got %v\nwant %v", got, missed)
			}
			if ready := frames[len(frames)-1]; ready.ID != private.ID || ready.Event.User != "alice" {
				t.Fatalf("ready %s %s, want id %s (the last replayed event)", ready.ID, ready.Data, private.ID)
			}

			// The snapshot at her position, then live, with nothing
			// repeated.
			var after chattest.Event
			rest := readSnapshot(resumed, nil, func() string { after = bob.Say("lobby", "welcome back"); return after.ID })
			checkSnapshot(t, private.ID, rest, "alice", "bob")
			onlyLiveBeforeMarker(t, rest)
			if f := rest[len(rest)-1]; f.Kind != "message" || f.Event != after {
				t.Fatalf("live event %s %s, want %+v", f.Kind, f.Data, after)
			}
		})
	}
}

// Resuming while publishers keep posting: across many reconnects, the
// messages a user reads are exactly the acknowledged ones, in id order, with
// no gap and no duplicate. Each connection catches up with everything
// acknowledged when it opened (so live events arrive while the backlog is
// replayed), reads a few live ones, and drops. Three publishers make the
// appender commit batches, so live events come in bursts.
func TestResumeWhilePublishing(t *testing.T) {
	srv := chattest.Start(t)
	alice := srv.Login(t, "alice")
	alice.Join("lobby")
	var writers []*chattest.Client
	for _, name := range []string{"bob", "carol", "dave"} {
		w := srv.Login(t, name)
		w.Join("lobby")
		writers = append(writers, w)
	}

	var (
		mu    sync.Mutex
		acked []int64
		top   int64 // the highest acknowledged id
		perr  error
	)
	ackedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	highest := func() int64 { mu.Lock(); defer mu.Unlock(); return top }
	// Alice's starting position comes before the first message.
	first := alice.Stream("")
	last := first.Ready()
	first.Close()

	// Publishers are stopped by a flag, not by cancelling their requests:
	// a cancelled POST may be committed without being acknowledged.
	var stopping atomic.Bool
	var wg sync.WaitGroup
	for _, w := range writers {
		wg.Go(func() {
			for i := 0; !stopping.Load(); i++ {
				e, err := post(context.Background(), srv.URL, w.Token, "/api/rooms/lobby/messages", fmt.Sprintf("%s %d", w.Name, i))
				mu.Lock()
				if err != nil {
					perr = err
					mu.Unlock()
					return
				}
				n, _ := strconv.ParseInt(e.ID, 10, 64)
				acked = append(acked, n)
				top = max(top, n)
				mu.Unlock()
			}
		})
	}
	stop := func() { stopping.Store(true); wg.Wait() }
	defer stop()

	const iterations = 30
	var seen []int64
	prev := num(t, last)
	for i := range iterations {
		target := highest()
		s := open(t, srv.URL, alice, resumeVia[i%2], last)
		live := 0
		frames := s.Until(func(f chattest.Frame) bool {
			if f.Kind == "message" && num(t, f.ID) > target {
				live++
			}
			return live > i%5
		})
		s.Close()
		if frames[0].Kind == "reset" {
			t.Fatalf("iteration %d: reset %s", i, frames[0].Data)
		}
		checkIncreasing(t, prev, frames)
		onlyOwnPresence(t, "alice", frames)
		for _, id := range messageIDs(frames) {
			seen = append(seen, num(t, id))
		}
		last = frames[len(frames)-1].ID
		prev = num(t, last)
		// Stay away while a few more messages are acknowledged.
		more := ackedCount() + i%13
		chattest.Eventually(t, "more acknowledged messages", func() bool { return ackedCount() >= more })
	}
	stop()
	if perr != nil {
		t.Fatalf("publisher: %v", perr)
	}
	slices.Sort(acked)
	final := strconv.FormatInt(acked[len(acked)-1], 10)
	s := alice.Stream(last)
	frames := s.Until(func(f chattest.Frame) bool { return f.ID == final && isLogged(f.Kind) })
	checkIncreasing(t, prev, frames)
	onlyOwnPresence(t, "alice", frames)
	for _, id := range messageIDs(frames) {
		seen = append(seen, num(t, id))
	}

	if !slices.Equal(seen, acked) {
		t.Fatalf("alice read %d messages, %d were acknowledged; first difference at %d",
			len(seen), len(acked), firstDiff(seen, acked))
	}
	var history []int64
	for _, e := range alice.History("lobby") {
		history = append(history, num(t, e.ID))
	}
	if !slices.Equal(history, acked) {
		t.Fatalf("history has %d messages, %d were acknowledged; first difference at %d",
			len(history), len(acked), firstDiff(history, acked))
	}
	t.Logf("%d messages over %d reconnects", len(acked), iterations+1)
}

// onlyOwnPresence fails unless every live frame is a presence of user: the
// writers, who never open a stream, are never online. Her own comes and
// goes as her streams open and close.
func onlyOwnPresence(t testing.TB, user string, frames []chattest.Frame) {
	t.Helper()
	for _, f := range frames {
		if isLive(f) && (f.Kind != "presence" || f.Event.User != user) {
			t.Fatalf("%s %s on %s's stream, whose peers are never online: %s", f.Kind, f.Data, user, chattest.Kinds(frames))
		}
	}
}

func firstDiff(a, b []int64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// A user who leaves a room while disconnected gets that room's events up to
// and including their own leave, and nothing of it afterwards; their private
// messages keep coming.
func TestResumeAcrossLeave(t *testing.T) {
	srv := chattest.Start(t)
	alice, bob, carol := srv.Login(t, "alice"), srv.Login(t, "bob"), srv.Login(t, "carol")
	alice.Join("lobby")
	bob.Join("lobby")
	bobS := bob.Stream("")
	untilLive(bobS, "bob")
	aliceS := alice.Stream("")
	aliceS.Ready()
	// Wait for her own online notice: it is her position, and closing
	// before the server took her coming online in would publish no
	// presence at all.
	last := waitPresence(aliceS, "alice", "online").ID
	aliceS.Close()
	waitPresence(bobS, "alice", "offline")

	m1 := bob.Say("lobby", "one")
	m2 := bob.Say("lobby", "two")
	var p1, p2 chattest.Event
	bob.MustDo("POST", "/api/users/alice/messages", map[string]string{"text": "p1"}, &p1, 201)
	alice.MustDo("POST", "/api/rooms/lobby/leave", nil, nil, 204)
	leave := bobS.Expect("leave", func(e chattest.Event) bool { return e.User == "alice" })
	bob.Say("lobby", "after she left")
	carol.Join("lobby")
	bob.MustDo("POST", "/api/users/alice/messages", map[string]string{"text": "p2"}, &p2, 201)

	resumed := alice.Stream(last)
	frames := untilReady(resumed)
	checkIncreasing(t, num(t, last), frames)
	replayedEvents(t, frames[:len(frames)-1])
	var got []string
	for _, f := range frames[:len(frames)-1] {
		got = append(got, f.Kind+"#"+f.ID)
	}
	want := []string{"message#" + m1.ID, "message#" + m2.ID, "private#" + p1.ID, "leave#" + leave.ID, "private#" + p2.ID}
	if !slices.Equal(got, want) {
		t.Fatalf("backlog across the leave:\n got %v\nwant %v", got, want)
	}
	// She shares no room with bob any more: although he is online, her
	// snapshot lists nobody but herself.
	rest := readSnapshot(resumed, nil, func() string {
		var p3 chattest.Event
		bob.MustDo("POST", "/api/users/alice/messages", map[string]string{"text": "p3"}, &p3, 201)
		return p3.ID
	})
	checkSnapshot(t, p2.ID, rest, "alice")
}

// Membership periods: a user who leaves and rejoins while away gets the
// room's events of each period they were in, and none from the gap; a room
// joined while away starts at their join.
func TestResumeAcrossLeaveAndRejoin(t *testing.T) {
	srv := chattest.Start(t)
	alice, bob, carol := srv.Login(t, "alice"), srv.Login(t, "bob"), srv.Login(t, "carol")
	alice.Join("lobby")
	bob.Join("lobby")
	carol.Join("side")
	bobS := bob.Stream("")
	untilLive(bobS, "bob")
	aliceS := alice.Stream("")
	aliceS.Ready()
	last := waitPresence(aliceS, "alice", "online").ID
	aliceS.Close()
	waitPresence(bobS, "alice", "offline")

	m1 := bob.Say("lobby", "in her first period")
	alice.MustDo("POST", "/api/rooms/lobby/leave", nil, nil, 204)
	leave := bobS.Expect("leave", func(e chattest.Event) bool { return e.User == "alice" })
	bob.Say("lobby", "while she was out")
	alice.Join("lobby")
	rejoin := bobS.Expect("join", func(e chattest.Event) bool { return e.User == "alice" })
	m3 := bob.Say("lobby", "in her second period")
	carol.Say("side", "before she came")
	alice.Join("side")
	var s1 chattest.Event
	carol.MustDo("POST", "/api/rooms/side/messages", map[string]string{"text": "welcome"}, &s1, 201)

	resumed := alice.Stream(last)
	frames := untilReady(resumed)
	checkIncreasing(t, num(t, last), frames)
	replayedEvents(t, frames[:len(frames)-1])
	var got []string
	for _, f := range frames[:len(frames)-1] {
		got = append(got, f.Kind+" "+f.Event.Room+" "+f.ID)
	}
	sideJoin := ""
	for _, f := range frames {
		if f.Kind == "join" && f.Event.Room == "side" {
			sideJoin = f.ID
		}
	}
	want := []string{
		"message lobby " + m1.ID, "leave lobby " + leave.ID, "join lobby " + rejoin.ID,
		"message lobby " + m3.ID, "join side " + sideJoin, "message side " + s1.ID,
	}
	if !slices.Equal(got, want) || sideJoin == "" {
		t.Fatalf("backlog across leave and rejoin:\n got %v\nwant %v", got, want)
	}
	// Back in the lobby, she sees bob online; carol, in the side room,
	// never opened a stream.
	rest := readSnapshot(resumed, nil, func() string { return bob.Say("lobby", "welcome back").ID })
	checkSnapshot(t, s1.ID, rest, "alice", "bob")
}

// The lid closes in a busy room and opens much later: with the default
// limits, a backlog of 900 messages replays in full while the room keeps
// going, and the page then follows live, without a reset or a cut-off.
func TestLidClosedOnABusyRoom(t *testing.T) {
	srv := chattest.Start(t)
	alice := srv.Login(t, "alice")
	alice.Join("lobby")
	var writers []*chattest.Client
	for i := range 6 {
		w := srv.Login(t, fmt.Sprintf("writer%d", i))
		w.Join("lobby")
		writers = append(writers, w)
	}
	watch := writers[0].Stream("")
	untilLive(watch, writers[0].Name)
	s := alice.Stream("")
	s.Ready()
	last := waitPresence(s, "alice", "online").ID
	s.Close()
	waitPresence(watch, "alice", "offline")

	var (
		mu    sync.Mutex
		acked []int64
		perr  error
	)
	write := func(w *chattest.Client, n int, stop *atomic.Bool) {
		for i := 0; i < n && !stop.Load(); i++ {
			e, err := post(context.Background(), srv.URL, w.Token, "/api/rooms/lobby/messages", fmt.Sprintf("%s %d", w.Name, i))
			mu.Lock()
			if err != nil {
				perr = err
				mu.Unlock()
				return
			}
			id, _ := strconv.ParseInt(e.ID, 10, 64)
			acked = append(acked, id)
			mu.Unlock()
		}
	}
	// The backlog: 900 messages while she is away.
	var never atomic.Bool
	var wg sync.WaitGroup
	for _, w := range writers {
		wg.Go(func() { write(w, 150, &never) })
	}
	wg.Wait()
	// The room keeps going while she catches up.
	var stopping atomic.Bool
	for _, w := range writers[:2] {
		wg.Go(func() { write(w, 1<<30, &stopping) })
	}
	stop := func() { stopping.Store(true); wg.Wait() }
	defer stop()

	resumed := alice.Stream(last)
	frames := untilReady(resumed)
	if frames[0].Kind == "reset" {
		t.Fatalf("resume of a 900-message backlog reset: %s", frames[0].Data)
	}
	readyAt := len(frames) - 1
	// Follow live a little, then let the room go quiet and read to its end.
	mu.Lock()
	target := acked[len(acked)-1] + 20
	mu.Unlock()
	frames = append(frames, resumed.Until(func(f chattest.Frame) bool { return num(t, f.ID) >= target })...)
	stop()
	if perr != nil {
		t.Fatal(perr)
	}
	slices.Sort(acked)
	final := strconv.FormatInt(acked[len(acked)-1], 10)
	if num(t, frames[len(frames)-1].ID) < num(t, final) {
		frames = append(frames, resumed.Until(func(f chattest.Frame) bool { return f.ID == final })...)
	}
	checkIncreasing(t, num(t, last), frames)
	var got []int64
	for _, id := range messageIDs(frames) {
		got = append(got, num(t, id))
	}
	if !slices.Equal(got, acked) {
		t.Fatalf("alice read %d messages, %d were acknowledged; first difference at %d", len(got), len(acked), firstDiff(got, acked))
	}
	if k := srv.App.Broker().Kicked(); k != 0 {
		t.Fatalf("%d connections cut off while a reader caught up", k)
	}
	// The snapshot came once the backlog and the events held meanwhile
	// were sent, at the position they left: writer0, watching, is online;
	// the other writers never opened a stream.
	rest := readSnapshot(resumed, frames[readyAt+1:], func() string { return writers[0].Say("lobby", "the end").ID })
	checkSnapshot(t, frames[readyAt].ID, rest, "alice", writers[0].Name)
	t.Logf("%d messages: a backlog of 900, the rest live", len(acked))
}
