package app_test

import (
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ssechat/ssechat/broker"
	"github.com/ssechat/ssechat/internal/chattest"
)

// Two servers on one SQLite file are two instances sharing one log, with
// no news between them but polling: the same code path as a PostgreSQL
// cluster whose Redis is down. What one appends the other applies, in
// the log's order, with the same ids; a membership changed on one is
// checked on the other; a stream resumes on either.
func TestTwoInstancesOnOneLog(t *testing.T) {
	db := filepath.Join(t.TempDir(), "shared.db")
	cfg := broker.Config{PollInterval: 20 * time.Millisecond}
	a := chattest.Start(t, chattest.WithDB(db), chattest.WithBroker(cfg))
	b := chattest.Start(t, chattest.WithDB(db), chattest.WithBroker(cfg))

	aliceA := a.Login(t, "alice")
	bobB := b.Login(t, "bob")
	aliceA.Join("lobby")
	// The join happened on a; b checks membership as of the log's head.
	aliceA.On(b).MustDo("GET", "/api/rooms/lobby/messages", nil, nil, http.StatusOK)
	bobB.Join("lobby")

	onA := aliceA.Stream("")
	onA.Ready()
	onB := bobB.Stream("")
	onB.Ready()

	var wg sync.WaitGroup
	acked := make(chan chattest.Event, 200)
	for i, c := range []*chattest.Client{aliceA, bobB} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range 40 {
				acked <- c.Say("lobby", strconv.Itoa(i)+"-"+strconv.Itoa(n))
			}
		}()
	}
	wg.Wait()
	close(acked)
	want := map[string]bool{}
	for e := range acked {
		want[e.ID] = true
	}
	orderA := messageIDs(t, onA, len(want))
	orderB := messageIDs(t, onB, len(want))
	for i := range orderA {
		if orderA[i] != orderB[i] {
			t.Fatalf("the instances' streams differ at %d: %s vs %s", i, orderA[i], orderB[i])
		}
		if !want[orderA[i]] {
			t.Fatalf("stream has %s, which no POST was answered with", orderA[i])
		}
		delete(want, orderA[i])
	}
	if len(want) != 0 {
		t.Fatalf("acknowledged but not streamed: %v", want)
	}

	// A stream that saw up to some id on a resumes on b exactly after it.
	mid := orderA[len(orderA)/2]
	resumed := aliceA.On(b).Stream(mid)
	rest := messageIDs(t, resumed, len(orderA)/2-1+len(orderA)%2)
	for i, id := range rest {
		if id != orderA[len(orderA)/2+1+i] {
			t.Fatalf("resumed on b after %s: got %v, want %v", mid, rest, orderA[len(orderA)/2+1:])
		}
	}
}

// messageIDs reads n message events and returns their ids, checking that
// they increase.
func messageIDs(t *testing.T, s *chattest.Stream, n int) []string {
	t.Helper()
	var ids []string
	var prev int64
	for len(ids) < n {
		f := s.Expect("message", nil)
		id, err := strconv.ParseInt(f.ID, 10, 64)
		if err != nil || id <= prev {
			t.Fatalf("message id %q after %d", f.ID, prev)
		}
		prev = id
		ids = append(ids, f.ID)
	}
	return ids
}
