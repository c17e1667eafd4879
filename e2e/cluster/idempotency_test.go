//go:build unix

package cluster_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/ssechat/ssechat/internal/chattest"
)

// An Idempotency-Key holds across instances: a POST on A repeated on B
// answers A's event, and POSTs with one key racing on both instances post
// one message; the streams on both show each message once.
func TestIdempotencyKeyAcrossInstances(t *testing.T) {
	c := startCluster(t)
	A, B := c.A.server(), c.B.server()
	alice := user(t, A, "alice", "lobby")
	bob := user(t, B, "bob", "lobby")
	aliceS, bobS := alice.Stream(""), bob.Stream("")
	aliceS.Ready()
	bobS.Ready()

	first := alice.PostKeyed("/api/rooms/lobby/messages", "once-A", "posted on A")
	if first.Status != http.StatusCreated {
		t.Fatalf("POST on A: %d %q", first.Status, first.Error)
	}
	repeat := alice.On(B).PostKeyed("/api/rooms/lobby/messages", "once-A", "posted on A")
	if repeat.Status != http.StatusOK || repeat.Event != first.Event {
		t.Fatalf("repeat on B: %d %+v %q, want 200 %+v", repeat.Status, repeat.Event, repeat.Error, first.Event)
	}
	if other := alice.On(B).PostKeyed("/api/users/bob/messages", "once-A", "posted on A"); other.Status != http.StatusUnprocessableEntity {
		t.Fatalf("the key for another recipient on B: %d %q, want 422", other.Status, other.Error)
	}

	// Racing on both instances, for a room message and a private one.
	const racers = 8 // per instance and key
	type answer struct {
		key string
		a   chattest.Answer
	}
	answers := make(chan answer, 4*racers)
	var wg sync.WaitGroup
	for range racers {
		for _, srv := range []*chattest.Server{A, B} {
			wg.Go(func() {
				answers <- answer{"race-room", alice.On(srv).PostKeyed("/api/rooms/lobby/messages", "race-room", "raced")}
			})
			wg.Go(func() {
				answers <- answer{"race-private", alice.On(srv).PostKeyed("/api/users/bob/messages", "race-private", "raced privately")}
			})
		}

	}
	wg.Wait()
	close(answers)
	ids := map[string]map[string]int{}
	created := map[string]int{}
	for a := range answers {
		if a.a.Status != http.StatusCreated && a.a.Status != http.StatusOK {
			t.Fatalf("%s: %d %q", a.key, a.a.Status, a.a.Error)
		}
		if ids[a.key] == nil {
			ids[a.key] = map[string]int{}
		}
		ids[a.key][a.a.Event.ID]++
		if a.a.Status == http.StatusCreated {
			created[a.key]++
		}
	}
	for key, byID := range ids {
		if len(byID) != 1 || created[key] != 1 {
			t.Fatalf("%s: answered with ids %v, %d of them 201; want one id and one 201", key, byID, created[key])
		}
	}

	marker := bob.Say("lobby", "marker")
	for who, s := range map[string]*chattest.Stream{"alice on A": aliceS, "bob on B": bobS} {
		frames := s.Until(func(f chattest.Frame) bool { return f.ID == marker.ID })
		var texts []string
		for _, f := range frames {
			if f.Kind == "message" || f.Kind == "private" {
				texts = append(texts, f.Event.Text)
			}
		}
		counts := map[string]int{}
		for _, text := range texts {
			counts[text]++
		}
		if len(texts) != 4 || counts["posted on A"] != 1 || counts["raced"] != 1 || counts["raced privately"] != 1 {
			t.Fatalf("%s's stream shows %q, want each message once", who, texts)
		}
	}
}
