package handlers_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/ssechat/ssechat/internal/chattest"
	"github.com/ssechat/ssechat/limits"
)

const (
	lobbyPath = "/api/rooms/lobby/messages"
	toBob     = "/api/users/bob/messages"
)

// wantAnswer checks a keyed POST's status and, for an error, that it
// names the header.
func wantAnswer(t *testing.T, what string, a chattest.Answer, status int, errorHas string) {
	t.Helper()
	if a.Status != status {
		t.Fatalf("%s: %d %q, want %d", what, a.Status, a.Error, status)
	}
	if errorHas != "" && (!strings.Contains(a.Error, "Idempotency-Key") || !strings.Contains(a.Error, errorHas)) {
		t.Fatalf("%s: error %q, want it to name Idempotency-Key and say %q", what, a.Error, errorHas)
	}
}

// sent returns the texts of the messages on frames, in order.
func sent(frames []chattest.Frame) []string {
	var out []string
	for _, f := range frames {
		if f.Kind == "message" || f.Kind == "private" {
			out = append(out, f.Kind+" "+f.Event.Text)
		}
	}
	return out
}

// A repeat answers 200 with the original (same id, same ts) and sends
// nothing; the same key for another message is 422; the recipient's
// stream shows each message once.
func TestIdempotencyKeyRepeatAnswersTheOriginal(t *testing.T) {
	srv := chattest.Start(t)
	alice, bob := srv.Login(t, "alice"), srv.Login(t, "bob")
	alice.Join("lobby")
	alice.Join("den")
	bob.Join("lobby")
	bobS := bob.Stream("")
	bobS.Ready()

	for _, tc := range []struct{ what, key, path, again, text string }{
		{"room message", "k-room", lobbyPath, lobbyPath, "hello"},
		{"private message, recipient spelled otherwise on the repeat", "k-private", toBob, "/api/users/BOB/messages", "psst"},
		{"@mention", "k-mention", lobbyPath, lobbyPath, "@bob hi"},
	} {
		first := alice.PostKeyed(tc.path, tc.key, tc.text)
		wantAnswer(t, tc.what, first, http.StatusCreated, "")
		for range 2 {
			again := alice.PostKeyed(tc.again, tc.key, tc.text)
			wantAnswer(t, tc.what+" repeated", again, http.StatusOK, "")
			if again.Event != first.Event {
				t.Fatalf("%s repeated answers %+v, want the original %+v", tc.what, again.Event, first.Event)
			}
		}
	}
	for _, tc := range []struct{ what, key, path, text string }{
		{"other text", "k-room", lobbyPath, "hello!"},
		{"other room", "k-room", "/api/rooms/den/messages", "hello"},
		{"other recipient route", "k-private", lobbyPath, "psst"},
		{"other mention", "k-mention", lobbyPath, "@alice hi"},
	} {
		wantAnswer(t, tc.what, alice.PostKeyed(tc.path, tc.key, tc.text), http.StatusUnprocessableEntity, "was used for a different message")
	}
	// Keys are per user: bob's k-room is his own.
	if a := bob.PostKeyed(lobbyPath, "k-room", "hello"); a.Status != http.StatusCreated || a.Event.From != "bob" {
		t.Fatalf("bob's k-room: %d %+v, want a new message of his", a.Status, a.Event)
	}

	marker := alice.Say("lobby", "marker")
	frames := bobS.Until(func(f chattest.Frame) bool { return f.ID == marker.ID })
	want := []string{"message hello", "private psst", "private hi", "message hello", "message marker"}
	if got := sent(frames); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("bob's stream shows %q, want %q (each message once)", got, want)
	}
}

// A malformed key is 400 naming the header, and posts nothing.
func TestIdempotencyKeyMalformed(t *testing.T) {
	srv := chattest.Start(t)
	alice := srv.Login(t, "alice")
	alice.Join("lobby")
	for _, tc := range []struct{ what, key, says string }{
		{"129 bytes", strings.Repeat("k", 129), "at most 128 bytes"},
		{"invalid UTF-8", "k\xff", "valid UTF-8"},
		{"a C1 control character", "k\u0085", "control characters"},
	} {
		wantAnswer(t, tc.what, alice.PostKeyed(lobbyPath, tc.key, "no"), http.StatusBadRequest, tc.says)
		wantAnswer(t, tc.what, alice.PostKeyed("/api/users/alice/messages", tc.key, "no"), http.StatusBadRequest, tc.says)
	}
	for _, values := range [][]string{{""}, {"a", "b"}} {
		req, _ := http.NewRequest("POST", srv.URL+lobbyPath, strings.NewReader(`{"text":"no"}`))
		req.Header.Set("Authorization", "Bearer "+alice.Token)
		req.Header.Set("Content-Type", "application/json")
		req.Header["Idempotency-Key"] = values
		resp := alice.Raw(req)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("Idempotency-Key %q: %d, want 400", values, resp.StatusCode)
		}
	}
	// The longest key and any printable UTF-8 are fine.
	wantAnswer(t, "128 bytes", alice.PostKeyed(lobbyPath, strings.Repeat("k", 128), "yes"), http.StatusCreated, "")
	wantAnswer(t, "UTF-8 with spaces", alice.PostKeyed(lobbyPath, "clé n° 1 ✓", "yes too"), http.StatusCreated, "")

	var page struct{ Messages []chattest.Event }
	alice.MustDo("GET", lobbyPath, nil, &page, http.StatusOK)
	if len(page.Messages) != 2 {
		t.Fatalf("the lobby holds %d messages, want the 2 with good keys: %+v", len(page.Messages), page.Messages)
	}
}

// A repeat answered from its key is not charged against the message rate.
func TestIdempotencyKeyRepeatIsNotCharged(t *testing.T) {
	srv, _ := startLimited(t, limits.Config{MessageRate: 1, MessageBurst: 2})
	alice := srv.Login(t, "alice")
	alice.Join("lobby")
	first := alice.PostKeyed(lobbyPath, "k", "one")
	wantAnswer(t, "first", first, http.StatusCreated, "")
	for range 5 {
		wantAnswer(t, "repeat", alice.PostKeyed(lobbyPath, "k", "one"), http.StatusOK, "")
	}
	wantAnswer(t, "second message", alice.PostKeyed(lobbyPath, "k2", "two"), http.StatusCreated, "")
	want429(t, "third message", post(t, srv, alice, lobbyPath, "three"), "1", "too many messages")
}

// The retry of an @mention whose answer was lost gets the original even
// when the mention could no longer be made: its addressee, or its writer,
// left the room since. Without the key it is refused as before; the key
// given for another text is 422, as anywhere.
func TestIdempotencyKeyMentionRepeatAfterLeaving(t *testing.T) {
	srv := chattest.Start(t)
	alice, bob := srv.Login(t, "alice"), srv.Login(t, "bob")
	alice.Join("lobby")
	bob.Join("lobby")
	bobS := bob.Stream("")
	bobS.Ready()

	first := alice.PostKeyed(lobbyPath, "k-mention", "@bob are you there")
	wantAnswer(t, "mention", first, http.StatusCreated, "")
	bob.MustDo("POST", "/api/rooms/lobby/leave", nil, nil, http.StatusNoContent)
	again := alice.PostKeyed(lobbyPath, "k-mention", "@bob are you there")
	wantAnswer(t, "the repeat after bob left", again, http.StatusOK, "")
	if again.Event.ID != first.Event.ID || again.Event.TS != first.Event.TS {
		t.Fatalf("the repeat answered %+v, want the original %+v", again.Event, first.Event)
	}
	wantAnswer(t, "a new mention to bob", alice.PostKeyed(lobbyPath, "k-new", "@bob are you there"), http.StatusNotFound, "")
	wantAnswer(t, "the key for another text", alice.PostKeyed(lobbyPath, "k-mention", "@bob hello?"), http.StatusUnprocessableEntity, "different message")

	bob.Join("lobby")
	second := alice.PostKeyed(lobbyPath, "k-mention-2", "@bob back?")
	wantAnswer(t, "second mention", second, http.StatusCreated, "")
	alice.MustDo("POST", "/api/rooms/lobby/leave", nil, nil, http.StatusNoContent)
	again = alice.PostKeyed(lobbyPath, "k-mention-2", "@bob back?")
	wantAnswer(t, "the repeat after alice left", again, http.StatusOK, "")
	if again.Event.ID != second.Event.ID {
		t.Fatalf("the repeat answered id %s, want %s", again.Event.ID, second.Event.ID)
	}
	wantAnswer(t, "a new mention from outside", alice.PostKeyed(lobbyPath, "k-new-2", "@bob back?"), http.StatusForbidden, "")

	// Bob saw each mention once.
	last := alice.PostKeyed(toBob, "", "done")
	var got []string
	for _, f := range bobS.Until(func(f chattest.Frame) bool { return f.ID == last.Event.ID }) {
		if f.Kind == "private" {
			got = append(got, f.Event.Text)
		}
	}
	if strings.Join(got, "|") != "are you there|back?|done" {
		t.Fatalf("bob's stream had private messages %q, want each mention once", got)
	}
}
