package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/ssechat/ssechat/internal/chattest"
)

// num parses a wire id; ids are decimal strings.
func num(t testing.TB, id string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		t.Fatalf("id %q is not a decimal integer: %v", id, err)
	}
	return n
}

func isReady(f chattest.Frame) bool { return f.Kind == "ready" }

// untilReady reads a (resumed) stream up to and including its ready event.
func untilReady(s *chattest.Stream) []chattest.Frame { return s.Until(isReady) }

// streamQuery opens c's stream resuming with the last_event_id query
// parameter instead of the header, as scripts and first page loads do.
func streamQuery(t testing.TB, base string, c *chattest.Client, last string) *chattest.Stream {
	t.Helper()
	req, err := http.NewRequest("GET", base+"/api/stream?last_event_id="+url.QueryEscape(last), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	return chattest.OpenStream(t, req)
}

// resumeVia names the two ways a client says where it stopped.
var resumeVia = []string{"header", "query"}

// open resumes c's stream after last, by header or query parameter.
func open(t testing.TB, base string, c *chattest.Client, via, last string) *chattest.Stream {
	t.Helper()
	if via == "query" {
		return streamQuery(t, base, c, last)
	}
	return c.Stream(last)
}

// waitPresence waits until s sees user's presence become status. Tests use
// it so that a presence change is committed before they go on, which makes
// the expected backlog exact.
func waitPresence(s *chattest.Stream, user, status string) chattest.Frame {
	return s.Expect("presence", func(e chattest.Event) bool { return e.User == user && e.Status == status })
}

// post sends text as token's user to path (a room's or a user's messages)
// and returns the acknowledged event. Unlike chattest's helpers it never
// fails the test, so writer goroutines can call it and report errors.
func post(ctx context.Context, base, token, path, text string) (chattest.Event, error) {
	status, data, err := send(ctx, base, token, path, map[string]string{"text": text})
	if err != nil {
		return chattest.Event{}, err
	}
	if status != http.StatusCreated {
		return chattest.Event{}, fmt.Errorf("POST %s: status %d: %s", path, status, data)
	}
	var e chattest.Event
	if err := json.Unmarshal(data, &e); err != nil {
		return chattest.Event{}, fmt.Errorf("POST %s: %w", path, err)
	}
	return e, nil
}

// send POSTs body as JSON with token (if any) and returns the status and
// the answer; it never fails the test.
func send(ctx context.Context, base, token, path string, body any) (int, []byte, error) {
	js, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, chattest.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", base+path, bytes.NewReader(js))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// login logs name in (registering it on first use) and returns the token;
// like post, it never fails the test.
func login(base, name, password string) (string, error) {
	status, data, err := send(context.Background(), base, "", "/api/login",
		map[string]string{"username": name, "password": password})
	if err != nil {
		return "", err
	}
	var out struct{ Token string }
	if status != http.StatusOK || json.Unmarshal(data, &out) != nil || out.Token == "" {
		return "", fmt.Errorf("login %s: status %d: %s", name, status, data)
	}
	return out.Token, nil
}

// roomHistory pages back through all of room's messages and returns them
// oldest first.
func roomHistory(t testing.TB, c *chattest.Client, room string) []chattest.Event {
	t.Helper()
	var all []chattest.Event
	before := ""
	for {
		var page struct{ Messages []chattest.Event }
		path := "/api/rooms/" + room + "/messages?limit=500"
		if before != "" {
			path += "&before=" + before
		}
		c.MustDo("GET", path, nil, &page, 200)
		all = append(page.Messages, all...)
		if len(page.Messages) < 500 {
			return all
		}
		before = page.Messages[0].ID
	}
}

// checkIncreasing fails unless the ids of frames strictly increase from
// after; ready and shutdown, which are not in the log, repeat the position.
func checkIncreasing(t testing.TB, after int64, frames []chattest.Frame) {
	t.Helper()
	prev := after
	for _, f := range frames {
		n := num(t, f.ID)
		if n < prev || (n == prev && f.Kind != "ready" && f.Kind != "shutdown") {
			t.Fatalf("id %d of %s after %d: ids must increase (%s)", n, f.Kind, prev, chattest.Kinds(frames))
		}
		prev = n
	}
}

// messageIDs lists the ids of the message and private frames.
// replayedEvents returns the events of a resumed stream's backlog (its
// frames before ready). The only presence allowed there is the user's own
// going offline, which came after her position: live delivery would have
// sent it, so replay may. Every frame's id line matches its JSON id.
func replayedEvents(t testing.TB, backlog []chattest.Frame, offline chattest.Frame) []chattest.Event {
	t.Helper()
	var got []chattest.Event
	for _, f := range backlog {
		switch {
		case f.Kind == "presence":
			if f.ID != offline.ID || f.Event != offline.Event {
				t.Errorf("unexpected presence in the backlog: %s", f.Data)
			}
		case f.ID != f.Event.ID:
			t.Errorf("%s: id line %s but JSON id %s", f.Kind, f.ID, f.Event.ID)
		default:
			got = append(got, f.Event)
		}
	}
	return got
}

func messageIDs(frames []chattest.Frame) []string {
	var out []string
	for _, f := range frames {
		if f.Kind == "message" || f.Kind == "private" {
			out = append(out, f.ID)
		}
	}
	return out
}

// within fails if d exceeded limit.
func within(t testing.TB, what string, d, limit time.Duration) {
	t.Helper()
	if d > limit {
		t.Fatalf("%s took %v, want at most %v", what, d, limit)
	}
}

// repoRoot is the module's directory, found from this source file.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// lobbyWatchedByBob logs alice and bob in, both members of the lobby, and
// returns bob's stream once it shows him online: from then on alice's
// stream owes her nothing of his presence, and bob watches hers.
func lobbyWatchedByBob(t *testing.T, srv *chattest.Server) (alice, bob *chattest.Client, bobS *chattest.Stream) {
	t.Helper()
	alice, bob = srv.Login(t, "alice"), srv.Login(t, "bob")
	alice.Join("lobby")
	bob.Join("lobby")
	bobS = bob.Stream("")
	bobS.Ready()
	waitPresence(bobS, "bob", "online")
	return alice, bob, bobS
}
