//go:build unix

package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ssechat/ssechat/internal/chattest"
)

// httpc sends the writers' POSTs: more idle connections per instance than
// http.DefaultClient keeps, so eight writers do not reconnect each time.
var httpc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}

// send sends body (nil: none) as JSON with token (if any) and returns the
// status and the answer. It never fails the test, so writer goroutines
// can call it; a connection error is an error, any status is not.
func send(base, token, method, path string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		js, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(js)
	}
	ctx, cancel := context.WithTimeout(context.Background(), chattest.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, base+path, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// ledger records what writers were told: the acknowledged messages, and
// the texts of POSTs that got no 201, which may or may not have been
// committed (an instance killed before it answered) but must never show up
// unless they were.
type ledger struct {
	mu       sync.Mutex
	acked    map[int64]string // id → text, answered 201
	unacked  map[string]bool  // texts answered otherwise, or not at all
	statuses map[int]int      // status (0: no answer) → count
}

func newLedger() *ledger {
	return &ledger{acked: map[int64]string{}, unacked: map[string]bool{}, statuses: map[int]int{}}
}

// post sends text as token's user to path (a room's or a user's messages)
// on base and records the outcome; it returns the answer's status (0 when
// there was none), the event (when 201) and the body.
func (l *ledger) post(base, token, path, text string) (int, chattest.Event, []byte) {
	status, data, err := send(base, token, "POST", path, map[string]string{"text": text})
	var e chattest.Event
	var id int64
	if err == nil && status == http.StatusCreated {
		if err = json.Unmarshal(data, &e); err == nil {
			id, err = strconv.ParseInt(e.ID, 10, 64)
		}
	}
	if err != nil {
		status = 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.statuses[status]++
	if status != http.StatusCreated {
		l.unacked[text] = true
		return status, e, data
	}
	l.acked[id] = text
	return status, e, data
}

// count is the number of acknowledged messages.
func (l *ledger) count() int { l.mu.Lock(); defer l.mu.Unlock(); return len(l.acked) }

// last is the highest acknowledged id.
func (l *ledger) last() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Max(slices.Collect(maps.Keys(l.acked)))
}

func (l *ledger) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("%d acknowledged, %d not (answers by status: %v)", len(l.acked), len(l.unacked), l.statuses)
}

// checkDelivered fails unless the message and private frames among frames
// hold every acknowledged message exactly once with its text, in strictly
// increasing id order, and nothing else but texts whose POST got no 201.
func (l *ledger) checkDelivered(t testing.TB, who string, frames []chattest.Frame) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[int64]bool{}
	prev := int64(0)
	extra := 0
	for _, f := range frames {
		if f.Kind != "message" && f.Kind != "private" {
			continue
		}
		id := num(t, f.ID)
		if seen[id] {
			t.Fatalf("%s: event %s twice", who, f.ID)
		}
		if id <= prev {
			t.Fatalf("%s: id %d after %d", who, id, prev)
		}
		if f.Event.ID != f.ID {
			t.Fatalf("%s: id line %s but JSON id %s", who, f.ID, f.Event.ID)
		}
		seen[id], prev = true, id
		text, ok := l.acked[id]
		switch {
		case ok && text != f.Event.Text:
			t.Fatalf("%s: event %d has text %q, its POST was acknowledged with %q", who, id, f.Event.Text, text)
		case !ok && !l.unacked[f.Event.Text]:
			t.Fatalf("%s: event %d %q was never posted", who, id, f.Event.Text)
		case !ok:
			extra++
		}
	}
	var missing []int64
	for id := range l.acked {
		if !seen[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		t.Fatalf("%s: %d acknowledged messages never arrived, e.g. %v", who, len(missing), missing[:min(10, len(missing))])
	}
	if extra > 0 {
		t.Logf("%s: %d messages whose POST was not acknowledged were committed all the same", who, extra)
	}
}

// num parses a wire id; ids are decimal strings.
func num(t testing.TB, id string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		t.Fatalf("id %q is not a decimal integer: %v", id, err)
	}
	return n
}

// isLogEvent tells the frames of events in the log, which carry the same
// id on every stream, from live notices (ready, presence, members) whose
// id is the stream's position.
func isLogEvent(f chattest.Frame) bool {
	switch f.Kind {
	case "message", "private", "join", "leave", "read":
		return true
	}
	return false
}

// logEvents keeps the log events of frames.
func logEvents(frames []chattest.Frame) []chattest.Frame {
	return slices.DeleteFunc(slices.Clone(frames), func(f chattest.Frame) bool { return !isLogEvent(f) })
}

// ids lists the ids of frames, for comparisons and failure messages.
func ids(frames []chattest.Frame) []string {
	out := make([]string, len(frames))
	for i, f := range frames {
		out[i] = f.ID
	}
	return out
}

// checkIncreasing fails unless the ids of frames never decrease from after
// and log events' ids strictly increase (live notices repeat the position).
func checkIncreasing(t testing.TB, who string, after int64, frames []chattest.Frame) {
	t.Helper()
	prev := after
	for _, f := range frames {
		n := num(t, f.ID)
		if n < prev || (n == prev && isLogEvent(f)) {
			t.Fatalf("%s: id %d of %s after %d: ids must increase (%s)", who, n, f.Kind, prev, chattest.Kinds(frames))
		}
		prev = n
	}
}

// untilID reads s up to and including the first log event whose id is at
// least id. Ids on a stream only increase, so every event up to id that
// the stream owes has come by then.
func untilID(t testing.TB, s *chattest.Stream, id int64) []chattest.Frame {
	t.Helper()
	return s.Until(func(f chattest.Frame) bool { return isLogEvent(f) && num(t, f.ID) >= id })
}

func isReady(f chattest.Frame) bool { return f.Kind == "ready" }

// resumed reads a resumed stream's backlog up to and including its ready
// event, and fails if it begins with a reset.
func resumed(t testing.TB, s *chattest.Stream) []chattest.Frame {
	t.Helper()
	frames := s.Until(isReady)
	if frames[0].Kind == "reset" {
		t.Fatalf("the resume reset: %s", frames[0].Data)
	}
	return frames
}

// waitPresence waits until s shows user's presence becoming status.
func waitPresence(s *chattest.Stream, user, status string) chattest.Frame {
	return s.Expect("presence", func(e chattest.Event) bool { return e.User == user && e.Status == status })
}

// online asks srv (as c) whether user is online among room's members.
func online(t testing.TB, c *chattest.Client, room, user string) bool {
	t.Helper()
	var out struct {
		Members []struct {
			Username string
			Online   bool
		}
	}
	c.MustDo("GET", "/api/rooms/"+room+"/members", nil, &out, http.StatusOK)
	for _, m := range out.Members {
		if m.Username == user {
			return m.Online
		}
	}
	t.Fatalf("%s is not a member of %s", user, room)
	return false
}

// eventually polls cond until it holds, failing the test after d; it
// returns how long that took.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// errorBody fails unless data is the API's JSON error, {"error": "..."}.
func errorBody(t testing.TB, what string, data []byte) string {
	t.Helper()
	var e struct{ Error string }
	if err := json.Unmarshal(data, &e); err != nil || e.Error == "" {
		t.Fatalf("%s: body %q is not {\"error\": ...}", what, data)
	}
	return e.Error
}
