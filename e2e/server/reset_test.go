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
// known position: her own online notice, the last event her stream read.
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
	sc.bobS.Ready()
	s := sc.alice.Stream("")
	s.Ready()
	sc.last = waitPresence(s, "alice", "online").ID
	s.Close()
	// Once bob saw her go offline, the log holds exactly one event past
	// her position, and later events come only from the test.
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
// contains reason, then ready at head, then carries on live.
func (sc *scene) expectReset(t *testing.T, s *chattest.Stream, head, reason string) {
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
	live := sc.bob.Say("lobby", "live after the reset")
	rest := s.Until(func(f chattest.Frame) bool { return f.ID == live.ID })
	checkIncreasing(t, num(t, head), rest)
}

func TestReplayLimit(t *testing.T) {
	limit := chattest.WithBroker(broker.Config{ReplayLimit: 5})
	t.Run("at the limit replays", func(t *testing.T) {
		sc := newScene(t, limit)
		head := sc.say(t, 4) // + her offline notice: 5 events
		frames := untilReady(sc.alice.Stream(sc.last))
		if len(frames) != 6 || frames[0].Kind != "presence" || frames[4].ID != head {
			t.Fatalf("backlog %s, want her offline notice, 4 messages, ready", chattest.Kinds(frames))
		}
	})
	t.Run("over the limit resets", func(t *testing.T) {
		for _, via := range resumeVia {
			sc := newScene(t, limit)
			head := sc.say(t, 5) // 6 events
			sc.expectReset(t, open(t, sc.srv.URL, sc.alice, via, sc.last), head, "too many missed events")
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
			for _, via := range resumeVia {
				sc.expectReset(t, open(t, sc.srv.URL, sc.alice, via, id), head, c.reason)
				head = sc.say(t, 1)
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
	for _, via := range resumeVia {
		sc.expectReset(t, open(t, sc.srv.URL, sc.alice, via, sc.last), head, "older than the retained history")
		head = sc.say(t, 1)
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
		return len(roomHistory(t, alice, "lobby")) == 0
	})
	frames := untilReady(alice.Stream(sc.last))
	if frames[0].Kind != "reset" || !strings.Contains(frames[0].Event.Reason, "older than the retained history") {
		t.Fatalf("resume into pruned history: %s %s", chattest.Kinds(frames), frames[0].Data)
	}
}
