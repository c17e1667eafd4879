//go:build unix

package server_test

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/ssechat/ssechat/internal/chattest"
)

// An Idempotency-Key is stored with its message: after kill -9 and a
// restart on the same SQLite file, a repeat answers the original and
// sends nothing, and the recipient's resumed stream shows it once.
func testKeySurvivesRestart(t *testing.T, bin string) {
	db := filepath.Join(t.TempDir(), "chat.db")
	first := chattest.StartProc(t, bin, db)
	srv := first.Server()
	alice, bob := srv.Login(t, "alice"), srv.Login(t, "bob")
	alice.Join("lobby")
	bob.Join("lobby")
	bobS := bob.Stream("")
	before := bobS.Ready()
	bobS.Close()
	posts := []struct{ path, key, text string }{
		{"/api/rooms/lobby/messages", "retry-me", "to the room"},
		{"/api/users/bob/messages", "retry-me-too", "to bob"},
	}
	sent := make([]chattest.Answer, len(posts))
	for i, p := range posts {
		sent[i] = alice.PostKeyed(p.path, p.key, p.text)
		if sent[i].Status != http.StatusCreated {
			t.Fatalf("POST %s: %d %q", p.path, sent[i].Status, sent[i].Error)
		}
	}
	first.Kill()

	second := chattest.StartProc(t, bin, db)
	again := second.Server().Anonymous(t)
	again.Token, again.Name = alice.Token, alice.Name
	for i, p := range posts {
		repeat := again.PostKeyed(p.path, p.key, p.text)
		if repeat.Status != http.StatusOK || repeat.Event != sent[i].Event {
			t.Fatalf("repeat of %s after a restart: %d %+v %q, want 200 %+v", p.path, repeat.Status, repeat.Event, repeat.Error, sent[i].Event)
		}
		if other := again.PostKeyed(p.path, p.key, "something else"); other.Status != http.StatusUnprocessableEntity {
			t.Fatalf("the key for other text after a restart: %d %q, want 422", other.Status, other.Error)
		}
	}
	marker := again.PostKeyed("/api/rooms/lobby/messages", "", "marker")
	bobAgain := second.Server().Anonymous(t)
	bobAgain.Token, bobAgain.Name = bob.Token, bob.Name
	frames := bobAgain.Stream(before).Until(func(f chattest.Frame) bool { return f.ID == marker.Event.ID })
	var texts []string
	for _, f := range frames {
		if f.Kind == "message" || f.Kind == "private" {
			texts = append(texts, f.Event.Text)
		}
	}
	if len(texts) != 3 || texts[2] != "marker" {
		t.Fatalf("bob's resumed stream shows %q, want each message once, then the marker", texts)
	}
}
