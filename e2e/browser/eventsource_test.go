package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
)

// esEvent is one event a plain EventSource received, as the script below
// records it.
type esEvent struct {
	Kind string  `json:"kind"`
	ID   string  `json:"id"` // the EventSource's lastEventId when it arrived
	Data string  `json:"data"`
	At   float64 `json:"at"` // performance.now()
}

// esScript opens the browser's own EventSource on /api/stream, with the
// session cookie and nothing of ours around it, and records every event,
// open and error into window globals.
const esScript = `(() => {
	window.esGot = [];
	window.esOpens = [];
	window.esErrors = [];
	const es = new EventSource('/api/stream');
	window.es = es;
	for (const kind of ['message', 'private', 'join', 'leave', 'read', 'presence', 'members', 'ready', 'reset', 'shutdown']) {
		es.addEventListener(kind, (e) => esGot.push({ kind, id: e.lastEventId, data: e.data, at: performance.now() }));
	}
	es.onopen = () => { esOpens.push(performance.now()); };
	es.onerror = () => { esErrors.push(performance.now()); };
	return true;
})()`

// esHas is a JavaScript predicate: the EventSource got an event of kind
// whose data contains text.
func esHas(kind, text string) string {
	return `esGot.some(e => e.kind === ` + js(kind) + ` && e.data.includes(` + js(text) + `))`
}

// testEventSource: the product promises plain browsers with EventSource.
// Our page reads the stream with fetch, so this drives the browser's native
// EventSource itself, on our origin with the session cookie a login through
// the page set, in a document of ours that runs none of our scripts. Its
// events carry ids; after a graceful stop (the `shutdown` event, retry:
// 1000) and a restart on the same database and port it reconnects by
// itself with Last-Event-ID, and what was posted while it could not reach
// the server arrives once each, in order, replayed ahead of `ready`.
//
// It restarts the server: it runs before ReconnectAfterRestart, and the
// server it leaves behind is the same one on the same port.
func testEventSource(t *testing.T, browser context.Context, srv *chatServer) {
	// The proxy keeps the browser away from the restarted server while a
	// script posts, so that those messages can only come by the resume.
	proxy := startProxy(t, srv.addr)
	eve := newUser(t, browser, proxy.url(), "eve")
	eve.login("eve", "eve-password")
	eve.join("plain")
	fred := login(t, srv.url(), "fred", "fred-password")
	if err := fred.do(context.Background(), "POST", "/api/rooms/plain/join", nil, nil); err != nil {
		t.Fatalf("fred joining: %v", err)
	}
	// A page of our origin that is not the chat: our stream (a SharedWorker
	// of the chat page) closes with it, and nothing of ours helps the
	// EventSource.
	eve.open("/app.css")
	eve.wait("the chat page gone", `!document.getElementById('composer')`)
	_ = eval[bool](eve, esScript)
	eve.wait("ready on the EventSource", `esOpens.length === 1 && `+esHas("ready", `"user":"eve"`))

	fred.send(t, "plain", "before 1")
	if err := fred.do(context.Background(), "POST", "/api/users/eve/messages", map[string]string{"text": "private before"}, nil); err != nil {
		t.Fatalf("fred writing to eve: %v", err)
	}
	fred.send(t, "plain", "before 2")
	eve.wait("the messages before the stop", esHas("message", "before 2")+` && `+esHas("private", "private before"))

	srv.stop() // SIGTERM: every stream gets `shutdown` with retry: 1000
	eve.wait("the shutdown event, the EventSource reconnecting", esHas("shutdown", "restarting")+` && es.readyState === EventSource.CONNECTING`)
	proxy.setDown(true)
	srv.start()
	missed := []string{"missed 1", "missed 2", "missed 3"}
	for _, text := range missed {
		fred.send(t, "plain", text)
	}
	proxy.setDown(false)
	// Nothing is done to the page from here on: the EventSource reconnects
	// by itself.
	eve.wait("the missed messages", esHas("message", "missed 3")+` && es.readyState === EventSource.OPEN`)
	fred.send(t, "plain", "live again")
	eve.wait("a live message after the reconnect", esHas("message", "live again"))

	got := eval[[]esEvent](eve, `esGot`)
	opens := eval[[]float64](eve, `esOpens`)
	if len(opens) < 2 {
		t.Fatalf("the EventSource opened %d times, want a reconnect", len(opens))
	}
	checkEventSourceStream(t, got, missed)

	// retry: 1000 is honoured: the first try after the shutdown, whether it
	// opened the stream or failed (an error after the one the end of the
	// stream raised), came no sooner than a second later.
	var shutdownAt float64
	for _, e := range got {
		if e.Kind == "shutdown" {
			shutdownAt = e.At
		}
	}
	retried := opens[1]
	if errs := eval[[]float64](eve, `esErrors`); len(errs) > 1 && errs[1] < retried {
		retried = errs[1]
	}
	if gap := retried - shutdownAt; gap < 900 {
		t.Errorf("the EventSource tried again %.0f ms after the shutdown event, want no sooner than its retry: (1000 ms)", gap)
	}
	eve.checkConsole()
}

// checkEventSourceStream checks what the EventSource recorded: every event
// has an id, logged ids only grow, every message came once and in order,
// and those posted while it was away were replayed ahead of the new stream's
// `ready`, which only a resume from Last-Event-ID does (a stream opened
// without one starts at the newest event).
func checkEventSourceStream(t *testing.T, got []esEvent, missed []string) {
	t.Helper()
	var texts []string
	var last int64
	shutdown := -1
	for i, e := range got {
		if e.ID == "" {
			t.Errorf("event %d (%s %s) has no id", i, e.Kind, e.Data)
			continue
		}
		var id int64
		if _, err := fmt.Sscan(e.ID, &id); err != nil {
			t.Errorf("event %d (%s) has the id %q: %v", i, e.Kind, e.ID, err)
			continue
		}
		switch e.Kind {
		case "message", "private", "join", "leave", "read":
			if id <= last {
				t.Errorf("event %d (%s %s) has id %d after %d: logged ids must grow", i, e.Kind, e.Data, id, last)
			}
		default:
			if id < last {
				t.Errorf("event %d (%s) has id %d after %d: the position went back", i, e.Kind, id, last)
			}
		}
		last = id
		if e.Kind == "message" || e.Kind == "private" {
			var m struct {
				Text string `json:"text"`
			}
			if err := json.Unmarshal([]byte(e.Data), &m); err != nil {
				t.Errorf("event %d: %v", i, err)
			}
			texts = append(texts, m.Text)
		}
		if e.Kind == "shutdown" && shutdown < 0 {
			shutdown = i
		}
	}
	want := append([]string{"before 1", "private before", "before 2"}, missed...)
	want = append(want, "live again")
	if fmt.Sprint(texts) != fmt.Sprint(want) {
		t.Errorf("the EventSource's messages: %q, want %q (each once, in order)", texts, want)
	}
	if shutdown < 0 {
		t.Fatal("no shutdown event")
	}
	// After the shutdown: the replay, then the new stream's ready.
	var after []string
	for _, e := range got[shutdown+1:] {
		after = append(after, e.Kind)
		if e.Kind == "ready" {
			break
		}
	}
	if want := "[message message message ready]"; fmt.Sprint(after) != want {
		t.Errorf("after the shutdown the EventSource got %v, want %s: the missed messages replayed from Last-Event-ID", after, want)
	}
}
