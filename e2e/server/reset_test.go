package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ssechat/ssechat/app"
	"github.com/ssechat/ssechat/broker"
	"github.com/ssechat/ssechat/internal/chattest"
	"github.com/ssechat/ssechat/store/sqlite"
)

// scene is alice and bob in the lobby, bob watching, alice away with a
// known position: her own online notice, the last event her stream read,
// which carries the stream's position (the head: nothing was logged
// after the joins).
type scene struct {
	srv        *chattest.Server
	alice, bob *chattest.Client
	bobS       *chattest.Stream
	last       string // alice's Last-Event-ID
}

func newScene(t *testing.T, opts ...chattest.Option) *scene {
	t.Helper()
	srv := chattest.Start(t, opts...)
	sc := &scene{srv: srv, alice: srv.Login(t, "alice"), bob: srv.Login(t, "bob")}
	sc.alice.Join("lobby")
	sc.bob.Join("lobby")
	sc.bobS = sc.bob.Stream("")
	untilLive(sc.bobS, "bob")
	s := sc.alice.Stream("")
	s.Ready()
	sc.last = waitPresence(s, "alice", "online").ID
	s.Close()
	// Once bob saw her go offline, her presence is settled. Presence is not
	// logged: the log holds nothing past her position, and later events
	// come only from the test.
	waitPresence(sc.bobS, "alice", "offline")
	return sc
}

// say posts n lobby messages as bob and returns the last one's id: the head.
func (sc *scene) say(t *testing.T, n int) string {
	t.Helper()
	var e chattest.Event
	for i := range n {
		e = sc.bob.Say("lobby", fmt.Sprintf("missed %d", i))
	}
	return e.ID
}

// expectReset checks that s starts with a reset at head whose reason
// contains reason, then ready at head, then the presence snapshot at head
// listing online (and alice, coming online with s), then carries on live.
func (sc *scene) expectReset(t *testing.T, s *chattest.Stream, head, reason string, online ...string) {
	t.Helper()
	if ct := s.Resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("Content-Type %q", ct)
	}
	frames := untilReady(s)
	if len(frames) != 2 || frames[0].Kind != "reset" {
		t.Fatalf("stream began %s, want reset then ready", chattest.Kinds(frames))
	}
	reset, ready := frames[0], frames[1]
	if reset.ID != head || reset.Event.ID != head || !strings.Contains(reset.Event.Reason, reason) {
		t.Fatalf("reset id %s, data %s; want id %s and a reason containing %q", reset.ID, reset.Data, head, reason)
	}
	if ready.ID != head {
		t.Fatalf("ready id %s after the reset, want the head %s", ready.ID, head)
	}
	var live chattest.Event
	rest := readSnapshot(s, nil, func() string { live = sc.bob.Say("lobby", "live after the reset"); return live.ID })
	state := checkSnapshot(t, head, rest, "alice", online...)
	onlyLiveBeforeMarker(t, rest)
	if f := rest[len(rest)-1]; f.Event != live {
		t.Fatalf("live event %s %s after the reset, want %+v", f.Kind, f.Data, live)
	}
	if state["alice"] != "online" {
		// Her coming online reaches s before the next stream she opens
		// while s stays open: that one's snapshot lists her.
		waitPresence(s, "alice", "online")
	}
}

func TestReplayLimit(t *testing.T) {
	limit := chattest.WithBroker(broker.Config{ReplayLimit: 5})
	t.Run("at the limit replays", func(t *testing.T) {
		sc := newScene(t, limit)
		head := sc.say(t, 5) // her going offline is not logged: 5 events
		s := sc.alice.Stream(sc.last)
		frames := untilReady(s)
		checkIncreasing(t, num(t, sc.last), frames)
		if got := replayedEvents(t, frames[:len(frames)-1]); len(got) != 5 || got[4].ID != head || frames[5].ID != head {
			t.Fatalf("backlog %s, want 5 messages up to %s, then ready", chattest.Kinds(frames), head)
		}
		// Not her going offline: the snapshot as it is now.
		rest := readSnapshot(s, nil, func() string { return sc.bob.Say("lobby", "live").ID })
		checkSnapshot(t, head, rest, "alice", "bob")
		onlyLiveBeforeMarker(t, rest)
	})
	t.Run("over the limit resets", func(t *testing.T) {
		for _, via := range resumeVia {
			sc := newScene(t, limit)
			head := sc.say(t, 6) // 6 events
			sc.expectReset(t, open(t, sc.srv.URL, sc.alice, via, sc.last), head, "too many missed events", "bob")
		}
	})
}

// Whatever a client sends as its position, it gets a 200 stream that
// starts with a reset (never a 400, which makes EventSource give up).
func TestResetOnUnusableLastEventID(t *testing.T) {
	cases := []struct{ name, id, reason string }{
		{"above the head (another database)", "", "unknown Last-Event-ID"},
		{"letters", "abc", "malformed Last-Event-ID"},
		{"negative", "-1", "malformed Last-Event-ID"},
		{"fraction", "1.5", "malformed Last-Event-ID"},
		{"overflow", "99999999999999999999", "malformed Last-Event-ID"},
		{"hex", "0x10", "malformed Last-Event-ID"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sc := newScene(t)
			head := sc.say(t, 2)
			id := c.id
			if id == "" {
				id = fmt.Sprint(num(t, head) + 1000)
			}
			online := []string{"bob"}
			for _, via := range resumeVia {
				sc.expectReset(t, open(t, sc.srv.URL, sc.alice, via, id), head, c.reason, online...)
				head = sc.say(t, 1)
				// That stream stays open: the next one's snapshot lists
				// alice herself.
				online = []string{"bob", "alice"}
			}
		})
	}
}

func TestResetPastRetention(t *testing.T) {
	ctx := context.Background()
	sc := newScene(t)
	head := sc.say(t, 3)
	// Prune through a second handle on the same file, as a pruner would:
	// every event so far is older than a second from now.
	st, err := sqlite.Open(ctx, sc.srv.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, err := st.Prune(ctx, time.Now().Add(time.Second)); err != nil || n == 0 {
		t.Fatalf("prune: %d events, %v", n, err)
	}
	online := []string{"bob"}
	for _, via := range resumeVia {
		sc.expectReset(t, open(t, sc.srv.URL, sc.alice, via, sc.last), head, "older than the retained history", online...)
		head = sc.say(t, 1)
		online = []string{"bob", "alice"} // that stream stays open
	}
	// A position at the pruned boundary loses nothing: it resumes.
	boundary, err := st.PrunedThrough(ctx)
	if err != nil {
		t.Fatal(err)
	}
	frames := untilReady(sc.alice.Stream(fmt.Sprint(boundary)))
	if frames[0].Kind == "reset" {
		t.Fatalf("resume from the boundary %d reset: %s", boundary, frames[0].Data)
	}
	checkIncreasing(t, boundary, frames)
	if ids := messageIDs(frames); len(ids) == 0 || ids[len(ids)-1] != head {
		t.Fatalf("resume from the boundary %d: %s, want up to %s", boundary, chattest.Kinds(frames), head)
	}
}

// app.Config.Retention (--history-retention) prunes in the background from
// the start, and a resume from before the pruned part resets.
func TestRetentionPrunesOnStart(t *testing.T) {
	db := t.TempDir() + "/chat.db"
	sc := newScene(t, chattest.WithDB(db))
	sc.say(t, 3)
	sc.srv.Close()

	keepAMillisecond := func(c *app.Config) { c.Retention = time.Millisecond }
	srv := chattest.Start(t, chattest.WithDB(db), keepAMillisecond)
	alice := srv.Anonymous(t)
	alice.Token, alice.Name = sc.alice.Token, "alice"
	chattest.Eventually(t, "the old history to be pruned", func() bool {
		return len(alice.History("lobby")) == 0
	})
	frames := untilReady(alice.Stream(sc.last))
	if frames[0].Kind != "reset" || !strings.Contains(frames[0].Event.Reason, "older than the retained history") {
		t.Fatalf("resume into pruned history: %s %s", chattest.Kinds(frames), frames[0].Data)
	}
}
