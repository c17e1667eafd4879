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
	"slices"
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
// it so that the server has taken a presence change in before they go on:
// a stream opened afterwards has it in its snapshot, and no notice of it
// is still on its way.
func waitPresence(s *chattest.Stream, user, status string) chattest.Frame {
	return s.Expect("presence", func(e chattest.Event) bool { return e.User == user && e.Status == status })
}

// untilLive reads s, a fresh stream of user's, up to its ready and on
// until the stream is live, and returns ready's id. The server writes
// ready before the stream goes live, and a presence notice that comes in
// between is dropped: the snapshot the stream gets on going live says who
// is online instead. So a test that waits for a notice on s (someone
// going offline, say) must first know s is live; ready is not enough.
// Any live frame received says so, and user's own online presence always
// comes, in the snapshot or after it.
func untilLive(s *chattest.Stream, user string) string {
	ready := s.Ready()
	waitPresence(s, user, "online")
	return ready
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

// isLogged reports whether kind is an event of the durable log: those
// alone have ids of their own, strictly increasing and never repeated.
func isLogged(kind string) bool {
	switch kind {
	case "message", "private", "join", "leave":
		return true
	}
	return false
}

// isLive reports whether f is live state (presence, a large room's
// counts): never stored, never replayed, and carrying the stream's
// position as its id.
func isLive(f chattest.Frame) bool { return f.Kind == "presence" || f.Kind == "members" }

// checkIncreasing fails unless frames, read from a stream after position
// after, keep its ids in order: a logged event's id is above every id
// before it (no duplicate, and nothing at or below a position the client
// could resume from), while the other frames carry the stream's position
// and may repeat the id before them, never go below it. A frame's id line
// matches its JSON id. If the frames include the stream's ready, nothing
// before it is live state: the backlog holds logged events only.
func checkIncreasing(t testing.TB, after int64, frames []chattest.Frame) {
	t.Helper()
	prev := after
	for i, f := range frames {
		if !f.HasID || f.Event.ID != f.ID {
			t.Fatalf("%s: id line %q but JSON id %q (%s)", f.Kind, f.ID, f.Event.ID, chattest.Kinds(frames))
		}
		n := num(t, f.ID)
		if n < prev || (n == prev && isLogged(f.Kind)) {
			t.Fatalf("id %d of %s after %d: logged ids must increase, the others never go down (%s)",
				n, f.Kind, prev, chattest.Kinds(frames))
		}
		if f.Kind == "ready" && slices.ContainsFunc(frames[:i], isLive) {
			t.Fatalf("presence or counts before ready: the backlog must hold logged events only (%s)", chattest.Kinds(frames))
		}
		prev = n
	}
}

// replayedEvents returns the events of a resumed stream's backlog (its
// frames before ready). It fails on anything but logged events: presence
// and counts are live state, told by the snapshot after ready, never
// replayed. Every frame's id line matches its JSON id.
func replayedEvents(t testing.TB, backlog []chattest.Frame) []chattest.Event {
	t.Helper()
	var got []chattest.Event
	for _, f := range backlog {
		switch {
		case !isLogged(f.Kind):
			t.Errorf("%s event in the backlog: %s (%s)", f.Kind, f.Data, chattest.Kinds(backlog))
		case f.ID != f.Event.ID:
			t.Errorf("%s: id line %s but JSON id %s", f.Kind, f.ID, f.Event.ID)
		default:
			got = append(got, f.Event)
		}
	}
	return got
}

// readSnapshot reads s, whose ready was read already, past its live
// snapshot; seen are frames already read after ready. It reads up to the
// stream's first presence or members frame, if seen holds none: live
// frames are dropped until the stream goes live, and going live queues
// the whole snapshot at once, so that frame starts the snapshot and the
// stream is live. Only then does it call mark, which posts an event s
// will get and returns its id, and reads up to that event: the marker
// comes after the whole snapshot, which no sleep could promise. (Events
// held during the replay may come before the snapshot: a marker posted
// right after ready could be one of them.) It returns seen and the frames
// read, the marker's last.
func readSnapshot(s *chattest.Stream, seen []chattest.Frame, mark func() string) []chattest.Frame {
	frames := slices.Clone(seen)
	if !slices.ContainsFunc(frames, isLive) {
		frames = append(frames, s.Until(isLive)...)
	}
	id := mark()
	return append(frames, s.Until(func(f chattest.Frame) bool { return isLogged(f.Kind) && f.ID == id })...)
}

// checkSnapshot checks frames that a stream of self's sent after its
// ready, whose id is ready, up to a marker read as readSnapshot reads it,
// in a scene where nobody's presence changes meanwhile but self's own, as
// the stream puts them online, and no room of self's is large: a members
// event is a failure. See checkLiveSnapshot.
func checkSnapshot(t testing.TB, ready string, frames []chattest.Frame, self string, online ...string) map[string]string {
	t.Helper()
	state, _ := checkLiveSnapshot(t, ready, frames, self, online, nil)
	return state
}

// counts is a members event's data.
type counts struct {
	Room            string
	Members, Online *int
}

func parseCounts(t testing.TB, f chattest.Frame) counts {
	t.Helper()
	var c counts
	if err := json.Unmarshal([]byte(f.Data), &c); err != nil || c.Members == nil || c.Online == nil {
		t.Fatalf("members event %s: want a room and both counts (%v)", f.Data, err)
	}
	return c
}

// checkLiveSnapshot checks frames that a stream of self's sent after its
// ready, whose id is ready, up to a marker read as readSnapshot reads it,
// in a scene where nobody's presence changes meanwhile but self's own, as
// the stream puts them online; large are self's large rooms.
//
// The snapshot is the first run of presence and members frames after
// ready (and after the events held during the replay, if any), all with
// the stream's position as id (that of the frame before it). It lists
// every user of online exactly once, status online, and nobody else but
// self, and one members event per large room. Self is online while the
// stream is open, but unless online lists them (another of their streams
// was open already) they may have come online after the stream went live:
// their own online notice may be in the snapshot, follow it, or both, and
// their large rooms' counts are sent again as they change, perhaps right
// after the snapshot. Nothing else live may follow the snapshot. Ids are
// checked as checkIncreasing does.
//
// It returns each user's presence as the frames left it, and the counts
// the snapshot gave each large room.
func checkLiveSnapshot(t testing.TB, ready string, frames []chattest.Frame, self string, online, large []string) (map[string]string, map[string]counts) {
	t.Helper()
	checkIncreasing(t, num(t, ready), frames)
	start := slices.IndexFunc(frames, isLive)
	if start < 0 {
		t.Fatalf("no presence after ready: %s", chattest.Kinds(frames))
	}
	position := ready
	if start > 0 {
		position = frames[start-1].ID
	}
	end := start
	for end < len(frames) && isLive(frames[end]) {
		end++
	}
	state, rooms := map[string]string{}, map[string]counts{}
	for i, f := range frames {
		if !isLive(f) {
			continue
		}
		inSnapshot := i >= start && i < end
		if f.Kind == "members" {
			c := parseCounts(t, f)
			switch {
			case !slices.Contains(large, c.Room):
				t.Fatalf("members event for %q, want them for the large rooms %v only: %s", c.Room, large, f.Data)
			case !inSnapshot:
				continue // a recount
			case rooms[c.Room].Room != "" && slices.Contains(online, self):
				t.Fatalf("snapshot gives the counts of %s twice: %s", c.Room, chattest.Kinds(frames))
			case rooms[c.Room].Room != "":
				// The recount self's coming online makes, right after
				// the snapshot.
				continue
			case f.ID != position:
				t.Fatalf("snapshot counts of %s have id %s, want the stream's position %s: %s", c.Room, f.ID, position, chattest.Kinds(frames))
			}
			rooms[c.Room] = c
			continue
		}
		user := f.Event.User
		switch {
		case f.Event.Status != "online":
			t.Fatalf("presence of %s %q after ready, want only online ones (%s)", user, f.Event.Status, chattest.Kinds(frames))
		case user == self && !slices.Contains(online, self):
		case !inSnapshot:
			t.Fatalf("presence of %s after the snapshot (frames %d to %d), but only %s came online meanwhile: %s",
				user, start, end-1, self, chattest.Kinds(frames))
		case !slices.Contains(online, user):
			t.Fatalf("snapshot lists %s, want exactly the online peers %v (and %s): %s", user, online, self, chattest.Kinds(frames))
		case state[user] != "":
			t.Fatalf("snapshot lists %s twice: %s", user, chattest.Kinds(frames))
		case f.ID != position:
			t.Fatalf("snapshot presence of %s has id %s, want the stream's position %s: %s", user, f.ID, position, chattest.Kinds(frames))
		}
		state[user] = f.Event.Status
	}
	for _, u := range online {
		if state[u] == "" {
			t.Fatalf("snapshot misses %s, who is online: %s", u, chattest.Kinds(frames))
		}
	}
	for _, r := range large {
		if rooms[r].Room == "" {
			t.Fatalf("snapshot misses the counts of %s: %s", r, chattest.Kinds(frames))
		}
	}
	return state, rooms
}

// onlyLiveBeforeMarker fails unless frames, read after a quiet stream's
// ready up to a marker, are presence and counts up to the marker: no
// logged event was held, repeated or invented.
func onlyLiveBeforeMarker(t testing.TB, frames []chattest.Frame) {
	t.Helper()
	for _, f := range frames[:len(frames)-1] {
		if !isLive(f) {
			t.Fatalf("%s between ready and the marker: %s", f.Kind, chattest.Kinds(frames))
		}
	}
}

// messageIDs lists the ids of the message and private frames.
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
// returns bob's stream once it shows him online: from then on every stream
// alice opens lists him in its snapshot and says nothing more of him, and
// bob watches her presence.
func lobbyWatchedByBob(t *testing.T, srv *chattest.Server) (alice, bob *chattest.Client, bobS *chattest.Stream) {
	t.Helper()
	alice, bob = srv.Login(t, "alice"), srv.Login(t, "bob")
	alice.Join("lobby")
	bob.Join("lobby")
	bobS = bob.Stream("")
	untilLive(bobS, "bob")
	return alice, bob, bobS
}
