package broker_test

import (
	"context"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssechat/ssechat/broker"
	"github.com/ssechat/ssechat/chat"
)

// commitCounter is a broker.Metrics that counts commits.
type commitCounter struct{ n atomic.Int64 }

func (c *commitCounter) ObserveCommit(d time.Duration) {
	if d > 0 {
		c.n.Add(1)
	}
}

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// settled returns the broker's stats once they stopped moving: the
// presence notices of streams that just opened are planned and delivered
// asynchronously.
func settled(t *testing.T, br *broker.Broker) broker.Stats {
	t.Helper()
	prev := br.Stats()
	for range 200 {
		time.Sleep(50 * time.Millisecond)
		cur := br.Stats()
		if cur.Deliveries == prev.Deliveries && cur.Events[chat.KindPresence] == prev.Events[chat.KindPresence] {
			return cur
		}
		prev = cur
	}
	t.Fatal("the broker's stats never settled")
	return prev
}

// The counts behind the metrics: streams, users online, events by kind,
// deliveries (one per event and stream), replays, and one commit timing
// per append.
func TestStatsCount(t *testing.T) {
	commits := &commitCounter{}
	br, stop := newBroker(t, broker.Config{Metrics: commits})
	var once sync.Once
	closeBroker := func() { once.Do(stop) }
	t.Cleanup(closeBroker)
	ctx := context.Background()
	connectMembers(ctx, t, br, 3)
	// The cluster's word, as it would come from cluster.Local or Redis
	// (the test broker has no listener).
	for _, u := range []string{"u0", "u1", "u2"} {
		br.PresenceChanged(u, true)
	}
	before := settled(t, br)
	if before.StreamsOpen != 3 || before.UsersOnline != 3 {
		t.Errorf("%d streams open, %d users online, want 3 and 3", before.StreamsOpen, before.UsersOnline)
	}
	if got := before.Events[chat.KindJoin]; got != 3 {
		t.Errorf("join events %d, want 3", got)
	}
	if got := before.Events[chat.KindPresence]; got != 3 {
		t.Errorf("presence notices %d, want 3 (one per user coming online)", got)
	}
	if commits.n.Load() != 3 {
		t.Errorf("%d commits observed, want 3 (one per join)", commits.n.Load())
	}

	sent, err := br.PostRoom(ctx, "u0", "room", "hello")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the message's three deliveries", func() bool { return br.Stats().Deliveries == before.Deliveries+3 })
	after := br.Stats()
	if got := after.Events[chat.KindMessage] - before.Events[chat.KindMessage]; got != 1 {
		t.Errorf("message events +%d, want +1", got)
	}
	if commits.n.Load() != 4 {
		t.Errorf("%d commits observed, want 4", commits.n.Load())
	}

	// A resume from before the message replays it.
	w := newCountingConn()
	br.ServeStream(ctx, w, httptest.NewRequest("GET", "/api/stream", nil), "u1", "", broker.Resume{After: sent.ID - 1, Given: true})
	eventually(t, "the replay", func() bool { return br.Stats().Replayed == 1 })
	eventually(t, "four streams", func() bool { return br.Stats().StreamsOpen == 4 })

	closeBroker()
	if st := br.Stats(); st.StreamsOpen != 0 || st.Kicked != 0 {
		t.Errorf("after close: %d streams open, %d kicked, want 0 and 0", st.StreamsOpen, st.Kicked)
	}
}
