//go:build unix

package cluster_test

import (
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/ssechat/ssechat/internal/chattest"
)

// Writers on both instances at once: a stream on each instance sees the
// same events in the same order, ids strictly increasing, and every
// acknowledged POST exactly once; both instances' history agrees.
func TestConcurrentPostersOneOrder(t *testing.T) {
	const writersPerInstance, perWriter = 4, 100
	c := startCluster(t)
	instances := []*instance{c.A, c.B}
	readerA := user(t, c.A.server(), "readerA", "lobby")
	readerB := user(t, c.B.server(), "readerB", "lobby")
	sA, sB := readerA.Stream(""), readerB.Stream("")
	posA, posB := num(t, sA.Ready()), num(t, sB.Ready())

	l := newLedger()
	var writers []func()
	for i := range 2 * writersPerInstance {
		in := instances[i/writersPerInstance]
		w := user(t, in.server(), fmt.Sprintf("writer%d", i), "lobby")
		writers = append(writers, func() {
			for j := range perWriter {
				l.post(in.URL, w.Token, "/api/rooms/lobby/messages", fmt.Sprintf("%s %d", w.Name, j))
			}
		})
	}
	var wg sync.WaitGroup
	for _, w := range writers {
		wg.Go(w)
	}
	wg.Wait()
	if l.count() != len(writers)*perWriter {
		t.Fatalf("not every POST was acknowledged: %v", l)
	}

	last := l.last()
	framesA, framesB := untilID(t, sA, last), untilID(t, sB, last)
	checkIncreasing(t, "the stream on A", posA, framesA)
	checkIncreasing(t, "the stream on B", posB, framesB)
	l.checkDelivered(t, "the stream on A", framesA)
	l.checkDelivered(t, "the stream on B", framesB)

	// The same log events (the writers' joins, the messages) in the same
	// order, from where both streams had begun.
	from := max(posA, posB)
	events := func(frames []chattest.Frame) []chattest.Event {
		var out []chattest.Event
		for _, f := range logEvents(frames) {
			if num(t, f.ID) > from {
				out = append(out, f.Event)
			}
		}
		return out
	}
	eventsA, eventsB := events(framesA), events(framesB)
	if !slices.Equal(eventsA, eventsB) {
		for i := range min(len(eventsA), len(eventsB)) {
			if eventsA[i] != eventsB[i] {
				t.Fatalf("the streams part at event %d: %+v on A, %+v on B", i, eventsA[i], eventsB[i])
			}
		}
		t.Fatalf("the stream on A has %d events, the one on B %d", len(eventsA), len(eventsB))
	}

	// History is the same on both instances: the acknowledged messages in
	// id order.
	var want []string
	for id := range l.acked {
		want = append(want, strconv.FormatInt(id, 10))
	}
	slices.SortFunc(want, func(x, y string) int { return int(num(t, x) - num(t, y)) })
	for _, r := range []*chattest.Client{readerA, readerB} {
		var got []string
		for _, e := range r.History("lobby") {
			got = append(got, e.ID)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("history as %s has %d messages, %d were acknowledged", r.Name, len(got), len(want))
		}
	}
}
