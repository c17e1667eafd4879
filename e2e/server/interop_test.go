package server_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/r3labs/sse/v2"

	"github.com/ssechat/ssechat/broker"
	"github.com/ssechat/ssechat/internal/chattest"
)

// The server writes its SSE frames itself (see broker/frame.go); every
// other test reads them with chattest.ReadFrames, our own parser. This
// file proves the wire format against an independent client,
// r3labs/sse/v2's sse.Client (the library the server used to be built
// on, and the reason it is still a dependency): event names, ids, JSON
// data that survives any user text, heartbeats between events, and resume
// with the Last-Event-ID header the client sends on connect.
//
// Quirks of the r3labs client (v2.10.0) these tests work around:
//   - Its default reconnect strategy retries every failed attempt, a 401
//     included, with exponential backoff for up to 15 minutes, and
//     cancelling the subscription's context does not stop it (each
//     cancelled request is one more failure; seen here, with
//     ReconnectNotify): a failing test would hang, and a silent reconnect
//     would hide a dropped stream. We set a strategy that never retries
//     and reconnect ourselves. (A stream the server ends cleanly is not
//     retried at all.)
//   - After the first id it turns every comment block (our heartbeat) into
//     an event with no name and no data that carries the last id; the spec
//     says comments are ignored, so r3Sub skips those.
//   - LastEventID is an atomic.Value of []byte: it is sent only if it
//     holds a []byte, and storing a string once it held one panics.
//   - It needs no `stream` query parameter (SubscribeRaw sends none); a
//     named subscription sends ?stream=NAME, which the server must ignore
//     (docs/design.md, invariant 4): TestR3labsResume subscribes to "bob" as
//     alice.

// noReconnect is a backoff.BackOff (gopkg.in/cenkalti/backoff.v1, which
// r3labs uses) that never retries: -1 is backoff.Stop.
type noReconnect struct{}

func (noReconnect) NextBackOff() time.Duration { return -1 }
func (noReconnect) Reset()                     {}

// newR3Client is an r3labs client for base's stream, authenticated with
// token's bearer header.
func newR3Client(base, token string) *sse.Client {
	c := sse.NewClient(base + "/api/stream")
	c.Headers["Authorization"] = "Bearer " + token
	c.ReconnectStrategy = noReconnect{}
	return c
}

// r3Event is an event as the r3labs client parsed it, with its data
// decoded.
type r3Event struct {
	ID, Kind, Data string
	Event          chattest.Event
}

// r3Sub is one subscription of an r3labs client to the stream.
type r3Sub struct {
	t      testing.TB
	events chan *sse.Event
	cancel context.CancelFunc
	ended  chan struct{}
	err    error // the subscription's result, once ended is closed
}

// subscribeR3 subscribes c; stream "" sends no stream parameter.
func subscribeR3(t testing.TB, c *sse.Client, stream string) *r3Sub {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &r3Sub{t: t, events: make(chan *sse.Event, 10000), cancel: cancel, ended: make(chan struct{})}
	handler := func(e *sse.Event) {
		select {
		case s.events <- e:
		case <-ctx.Done():
		}
	}
	go func() {
		defer close(s.ended)
		if stream == "" {
			s.err = c.SubscribeRawWithContext(ctx, handler)
		} else {
			s.err = c.SubscribeWithContext(ctx, stream, handler)
		}
	}()
	t.Cleanup(s.close)
	return s
}

// next returns the next event that is not a heartbeat, failing the test
// if the subscription ends or nothing comes within chattest.Timeout.
func (s *r3Sub) next() r3Event {
	s.t.Helper()
	deadline := time.After(chattest.Timeout)
	for {
		var e *sse.Event
		select {
		case e = <-s.events:
		case <-s.ended:
			select {
			case e = <-s.events:
			default:
				s.t.Fatalf("r3labs subscription ended: %v", s.err)
			}
		case <-deadline:
			s.t.Fatalf("r3labs client got no event within %v", chattest.Timeout)
		}
		if len(e.Event) == 0 && len(e.Data) == 0 {
			continue // a heartbeat comment, see the quirks above
		}
		ev := r3Event{ID: string(e.ID), Kind: string(e.Event), Data: string(e.Data)}
		// One JSON document per event: text that split the data or
		// forged fields would not decode.
		if err := json.Unmarshal(e.Data, &ev.Event); err != nil {
			s.t.Fatalf("%s event #%s: data %q is not JSON: %v", ev.Kind, ev.ID, e.Data, err)
		}
		if ev.ID != ev.Event.ID {
			s.t.Fatalf("%s event: SSE id %q but JSON id %q", ev.Kind, ev.ID, ev.Event.ID)
		}
		return ev
	}
}

// until collects events up to and including the first for which stop holds.
func (s *r3Sub) until(stop func(r3Event) bool) []r3Event {
	s.t.Helper()
	var out []r3Event
	for {
		e := s.next()
		out = append(out, e)
		if stop(e) {
			return out
		}
	}
}

// close cancels the subscription and waits until the client returned.
func (s *r3Sub) close() {
	s.cancel()
	select {
	case <-s.ended:
	case <-time.After(chattest.Timeout):
		s.t.Errorf("r3labs subscription still running %v after cancel", chattest.Timeout)
	}
}

// r3Kinds lists events for failure messages.
func r3Kinds(events []r3Event) string {
	var b strings.Builder
	for _, e := range events {
		b.WriteString(e.Kind + "#" + e.ID + " ")
	}
	return b.String()
}

// r3Frames turns events the r3labs client parsed into frames, for the
// checks the other tests make.
func r3Frames(events []r3Event) []chattest.Frame {
	out := make([]chattest.Frame, len(events))
	for i, e := range events {
		out[i] = chattest.Frame{ID: e.ID, HasID: true, Kind: e.Kind, Data: e.Data, Event: e.Event}
	}
	return out
}

// r3Increasing is checkIncreasing for what the r3labs client read: logged
// ids strictly increase from after, the others (ready, presence) repeat
// the position or move past it, and nothing is live before ready.
func r3Increasing(t testing.TB, after string, events []r3Event) {
	t.Helper()
	checkIncreasing(t, num(t, after), r3Frames(events))
}

// r3Snapshot is readSnapshot for an r3labs subscription.
func r3Snapshot(s *r3Sub, mark func() string) []r3Event {
	s.t.Helper()
	live := func(e r3Event) bool { return e.Kind == "presence" || e.Kind == "members" }
	events := s.until(live)
	id := mark()
	return append(events, s.until(func(e r3Event) bool { return isLogged(e.Kind) && e.ID == id })...)
}

// tricky are texts that would break a careless SSE writer or reader. The
// last is plain: a frame forged by any of the others would come before it.
var tricky = []string{
	"plain hello",
	"two\nlines",
	"carriage\rreturn and crlf\r\nend",
	"\n\nevent: private\ndata: x\n\n",
	"id: 999999\nretry: 1\n\n: comment\r\rdata: y",
	"data: not a field",
	`C:\new\raw "quoted" {"json": true}`,
	"<script>alert(1)</script> & \u2028 \u2029 \x00 \x7f",
	"héllo wörld — 世界 🎉 e\u0301 \ufeff",
	" leading and trailing spaces ",
	strings.Repeat("🎉", 4000), // the longest text: 16 KB, past r3labs' 4 KiB first buffer
	"the end",
}

// The r3labs client reads every room message exactly, with its name, its
// id on the id line and in the JSON, and its text byte for byte, whatever
// the text; nothing a text contains becomes an event of its own.
// Heartbeats every few milliseconds interleave comments with the events.
func TestR3labsReadsOurStream(t *testing.T) {
	srv := chattest.Start(t, chattest.WithBroker(broker.Config{Heartbeat: 20 * time.Millisecond}))
	alice, bob, bobS := lobbyWatchedByBob(t, srv)

	client := newR3Client(srv.URL, alice.Token)
	sub := subscribeR3(t, client, "")
	ready := sub.next()
	if ready.Kind != "ready" || ready.Event.User != "alice" {
		t.Fatalf("first event %s %s, want ready for alice", ready.Kind, ready.Data)
	}
	// The snapshot follows ready: bob, and alice herself, whose online
	// notice is on her stream before anything posted once bob saw it. Only
	// then is the rest of her stream the test's to predict.
	waitPresence(bobS, "alice", "online")
	snap := r3Frames(r3Snapshot(sub, func() string { return bob.Say("lobby", "marker").ID }))
	if state := checkSnapshot(t, ready.ID, snap, "alice", "bob"); state["alice"] != "online" {
		t.Fatalf("after ready: %s, want alice's online presence", chattest.Kinds(snap))
	}
	onlyLiveBeforeMarker(t, snap)

	var sent []chattest.Event
	for _, text := range tricky {
		sent = append(sent, bob.Say("lobby", text))
	}
	got := sub.until(func(e r3Event) bool { return e.ID == sent[len(sent)-1].ID })
	if len(got) != len(sent) {
		t.Fatalf("r3labs client got %d events, want the %d messages: %s", len(got), len(sent), r3Kinds(got))
	}
	for i, e := range got {
		switch {
		case e.Kind != "message":
			t.Errorf("event %d is %q, want message", i, e.Kind)
		case e.Event != sent[i]:
			t.Errorf("event %d:\n got %+v\nwant %+v (the POST's answer)", i, e.Event, sent[i])
		case e.Event.Text != tricky[i]:
			t.Errorf("event %d: text %q, want %q", i, e.Event.Text, tricky[i])
		}
	}
	// The client tracked our ids: it would resume from the last message.
	if last, _ := client.LastEventID.Load().([]byte); string(last) != sent[len(sent)-1].ID {
		t.Errorf("r3labs LastEventID %q, want %s", last, sent[len(sent)-1].ID)
	}
}

// A resume with the Last-Event-ID the r3labs client sends gets exactly
// the events after that id that alice may see, in order, once each, then
// `ready` and live events.
func TestR3labsResume(t *testing.T) {
	srv := chattest.Start(t)
	alice, bob, bobS := lobbyWatchedByBob(t, srv)
	carol := srv.Login(t, "carol")

	client := newR3Client(srv.URL, alice.Token)
	sub := subscribeR3(t, client, "")
	sub.until(func(e r3Event) bool { return e.Kind == "presence" && e.Event.User == "alice" })
	var seen []chattest.Event
	for i := range 5 {
		seen = append(seen, bob.Say("lobby", "seen "+tricky[i]))
	}
	sub.until(func(e r3Event) bool { return e.ID == seen[len(seen)-1].ID })
	sub.close()
	// Once bob saw her go offline, every later event comes from the test.
	waitPresence(bobS, "alice", "offline")

	var missed []chattest.Event
	for i := range 3 {
		missed = append(missed, bob.Say("lobby", "missed "+tricky[5+i]))
	}
	var private chattest.Event
	bob.MustDo("POST", "/api/users/alice/messages", map[string]string{"text": "psst\n\nevent: message"}, &private, 201)
	missed = append(missed, private)
	bob.MustDo("POST", "/api/users/carol/messages", map[string]string{"text": "for carol only"}, nil, 201)
	carol.MustDo("POST", "/api/users/bob/messages", map[string]string{"text": "for bob only"}, nil, 201)

	// Resume from the second message she saw: she missed the last three
	// she saw, the three after she left and bob's private message to her.
	// The subscription names bob's stream (?stream=bob), as an r3labs
	// client selecting a stream would: the server must serve alice's own,
	// which the private messages between bob and carol tell apart.
	from := seen[1].ID
	want := append(append([]chattest.Event(nil), seen[2:]...), missed...)
	client.LastEventID.Store([]byte(from))
	resumed := subscribeR3(t, client, "bob")
	backlog := resumed.until(func(e r3Event) bool { return e.Kind == "ready" })
	r3Increasing(t, from, backlog)
	var got []chattest.Event
	for _, e := range backlog[:len(backlog)-1] {
		switch e.Kind {
		case "message", "private":
			if want := map[string]string{"message": "lobby", "private": ""}[e.Kind]; e.Event.Room != want {
				t.Errorf("%s event #%s in room %q", e.Kind, e.ID, e.Event.Room)
			}
			got = append(got, e.Event)
		default:
			t.Errorf("unexpected %s event in the backlog: %s", e.Kind, e.Data)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("resumed after %s: got %d events (%s), want %d", from, len(got), r3Kinds(backlog), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("backlog event %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	if ready := backlog[len(backlog)-1]; ready.ID != private.ID || ready.Event.User != "alice" {
		t.Fatalf("ready #%s %s, want id %s (the last event replayed) for alice", ready.ID, ready.Data, private.ID)
	}

	// Then the snapshot as it is now, not a replay of her going offline:
	// bob is online, and she is again. Then live, nothing repeated.
	var live chattest.Event
	rest := r3Frames(r3Snapshot(resumed, func() string { live = bob.Say("lobby", "welcome back"); return live.ID }))
	checkSnapshot(t, private.ID, rest, "alice", "bob")
	onlyLiveBeforeMarker(t, rest)
	if e := rest[len(rest)-1]; e.Kind != "message" || e.Event != live {
		t.Fatalf("live event %s %s, want %+v", e.Kind, e.Data, live)
	}
}
