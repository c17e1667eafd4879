package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ssechat/ssechat/broker"
	"github.com/ssechat/ssechat/internal/chattest"
)

// An HTTP/1 stream is taken over from net/http and written by the broker
// itself; an HTTP/2 stream cannot be (one TCP connection carries many
// requests), so the broker writes it through the http.ResponseWriter. These
// tests cover that second path, which browsers take behind any TLS proxy
// that speaks HTTP/2.
//
// chattest.Start serves plain HTTP/1 only, so startH2 serves the same app
// (same sessions, same broker) a second time, over TLS with HTTP/2: alice
// reads her stream over HTTP/2 while bob, over HTTP/1, watches her
// presence.

// startH2 serves srv's app over TLS with HTTP/2 enabled.
func startH2(t *testing.T, srv *chattest.Server) *httptest.Server {
	t.Helper()
	h2 := httptest.NewUnstartedServer(srv.App.Handler())
	h2.EnableHTTP2 = true
	h2.StartTLS()
	t.Cleanup(func() {
		// Close waits for active requests: end any stream still open.
		h2.CloseClientConnections()
		h2.Close()
	})
	return h2
}

// h2Do sends body as JSON over HTTP/2 with token and decodes the answer
// into out (if not nil); it returns the status.
func h2Do(t *testing.T, h2 *httptest.Server, token, method, path string, body, out any) int {
	t.Helper()
	js, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), chattest.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, h2.URL+path, bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := h2.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("%s %s answered over %s, want HTTP/2", method, path, resp.Proto)
	}
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

// openH2Stream opens token's stream over HTTP/2, resuming after
// lastEventID unless it is "", and checks the response head.
func openH2Stream(t *testing.T, h2 *httptest.Server, token, lastEventID string) *chattest.Stream {
	t.Helper()
	req, err := http.NewRequest("GET", h2.URL+"/api/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	s := chattest.OpenStreamWith(t, h2.Client(), req)
	if s.Resp.ProtoMajor != 2 {
		t.Fatalf("stream answered over %s, want HTTP/2", s.Resp.Proto)
	}
	for header, want := range map[string]string{
		"Content-Type":      "text/event-stream",
		"Cache-Control":     "no-cache",
		"X-Accel-Buffering": "no",
		"Content-Encoding":  "",
	} {
		if got := s.Resp.Header.Get(header); got != want {
			t.Errorf("stream over HTTP/2: %s %q, want %q", header, got, want)
		}
	}
	return s
}

// A stream over HTTP/2 opens with ready, carries live events both ways
// (posted over HTTP/1 and over HTTP/2), and when the client closes the
// response body the server forgets the connection: alice goes offline.
// Then a resume over HTTP/2 gets exactly what she missed.
func TestHTTP2Stream(t *testing.T) {
	// No heartbeat during the test: a heartbeat written to the reset stream
	// would fail and end the writer, and hide a server that does not watch
	// the request's context.
	srv := chattest.Start(t, chattest.WithBroker(broker.Config{Heartbeat: time.Hour}))
	h2 := startH2(t, srv)
	alice, bob, bobS := lobbyWatchedByBob(t, srv)

	aliceS := openH2Stream(t, h2, alice.Token, "")
	first := aliceS.Until(isReady)
	if len(first) != 1 || first[0].Event.User != "alice" {
		t.Fatalf("HTTP/2 stream starts with %s, want ready for alice", chattest.Kinds(first))
	}
	// Her first connection puts her online, on bob's stream and on hers:
	// once bob saw it, her own notice is on her stream before anything
	// posted later.
	waitPresence(bobS, "alice", "online")
	// Then the snapshot: bob, and she herself. Bob's message (posted over
	// HTTP/1) follows it.
	var fromBob chattest.Event
	snap := readSnapshot(aliceS, nil, func() string { fromBob = bob.Say("lobby", "hello over h1"); return fromBob.ID })
	if state := checkSnapshot(t, first[0].ID, snap, "alice", "bob"); state["alice"] != "online" {
		t.Fatalf("HTTP/2 stream did not show alice online before bob's message: %s", chattest.Kinds(snap))
	}
	onlyLiveBeforeMarker(t, snap)

	// Live: bob's message and her own (posted over HTTP/2) arrive
	// exactly, with the SSE id equal to the JSON id.
	var fromAlice chattest.Event
	if status := h2Do(t, h2, alice.Token, "POST", "/api/rooms/lobby/messages", map[string]string{"text": "hello over h2\n\nevent: x"}, &fromAlice); status != http.StatusCreated {
		t.Fatalf("POST over HTTP/2: status %d", status)
	}
	live := append([]chattest.Frame{snap[len(snap)-1]}, aliceS.Until(func(f chattest.Frame) bool { return f.ID == fromAlice.ID })...)
	if len(live) != 2 {
		t.Fatalf("HTTP/2 stream got %s after the snapshot, want the two messages", chattest.Kinds(live))
	}
	for i, want := range []chattest.Event{fromBob, fromAlice} {
		if f := live[i]; f.Kind != "message" || f.ID != want.ID || f.Event != want {
			t.Errorf("HTTP/2 event %d: %s #%s %s, want %+v", i, f.Kind, f.ID, f.Data, want)
		}
	}
	bobS.Expect("message", func(e chattest.Event) bool { return e == fromAlice })

	// Closing the body resets the HTTP/2 stream; the server must notice
	// although the TCP connection stays open, or she would stay online
	// (and her writer would live on) until the connection closes.
	aliceS.Close()
	waitPresence(bobS, "alice", "offline")
	var members struct{ Members []broker.Member }
	bob.MustDo("GET", "/api/rooms/lobby/members", nil, &members, 200)
	for _, m := range members.Members {
		if m.Username == "alice" && m.Online {
			t.Fatalf("alice still online after her only stream closed: %+v", members.Members)
		}
	}

	// Resume over HTTP/2 after her last message: the messages she missed,
	// none of the presence, then the snapshot as it is now.
	var missed []chattest.Event
	for _, text := range []string{"missed 1", "missed 2\r\nevent: y", "missed 3 🎉"} {
		missed = append(missed, bob.Say("lobby", text))
	}
	resumed := openH2Stream(t, h2, alice.Token, fromAlice.ID)
	backlog := resumed.Until(isReady)
	checkIncreasing(t, num(t, fromAlice.ID), backlog)
	got := replayedEvents(t, backlog[:len(backlog)-1])
	if len(got) != len(missed) {
		t.Fatalf("HTTP/2 resume after %s: %s, want the %d missed messages", fromAlice.ID, chattest.Kinds(backlog), len(missed))
	}
	for i := range missed {
		if got[i] != missed[i] {
			t.Errorf("backlog event %d:\n got %+v\nwant %+v", i, got[i], missed[i])
		}
	}
	ready := backlog[len(backlog)-1]
	if ready.ID != missed[len(missed)-1].ID {
		t.Errorf("ready #%s, want %s (the last event replayed)", ready.ID, missed[len(missed)-1].ID)
	}
	rest := readSnapshot(resumed, nil, func() string { return bob.Say("lobby", "welcome back").ID })
	checkSnapshot(t, ready.ID, rest, "alice", "bob")
	onlyLiveBeforeMarker(t, rest)
	waitPresence(bobS, "alice", "online")
	resumed.Close()
	waitPresence(bobS, "alice", "offline")
}
