package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/ssechat/ssechat/broker"
)

// A stream that was quiet gets its next event at once; events that follow
// within the write gap wait for the gap's end and go out in one write.
func TestWriteGapCoalescesBusyStreams(t *testing.T) {
	const gap = 3 * time.Second
	br, closeBroker := newBroker(t, broker.Config{WriteGap: gap})
	defer closeBroker()
	ctx := context.Background()
	w := connectMembers(ctx, t, br, 2)[1]

	start := time.Now()
	post(ctx, t, br, 1)
	waitFrames(t, []*countingConn{w}, 2)
	if d := time.Since(start); d >= gap {
		t.Fatalf("the first event after a quiet spell took %v: it waited for the gap", d)
	}
	writes := w.writes.Load()

	const burst = 10
	post(ctx, t, br, burst)
	waitFrames(t, []*countingConn{w}, 2+burst)
	if n := w.writes.Load() - writes; n > 2 {
		t.Errorf("%d events posted back-to-back took %d writes; want them together", burst, n)
	}
}

// A stream waiting out its gap writes early once half its buffer is
// queued, instead of being cut off for falling behind.
func TestWriteGapEndsWhenTheQueueFills(t *testing.T) {
	const buffer = 8
	br, closeBroker := newBroker(t, broker.Config{WriteGap: time.Hour, StreamBuffer: buffer})
	defer closeBroker()
	ctx := context.Background()
	w := connectMembers(ctx, t, br, 2)[1]

	const n = 30 // the first goes at once, the rest within the hour's gap
	post(ctx, t, br, n)
	// All but the last few, fewer than half a buffer, which wait out the gap.
	waitFrames(t, []*countingConn{w}, 1+n-(buffer/2-1))
	if k := br.Kicked(); k != 0 {
		t.Errorf("%d connections were cut off", k)
	}
}

// Shutdown does not wait for a stream's gap to end.
func TestShutdownDuringWriteGap(t *testing.T) {
	br, closeBroker := newBroker(t, broker.Config{WriteGap: time.Hour})
	defer closeBroker()
	ctx := context.Background()
	connectMembers(ctx, t, br, 2)
	post(ctx, t, br, 2) // the second waits for the gap

	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := br.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown: %v; streams waiting for their gap did not close", err)
	}
}

func post(ctx context.Context, t *testing.T, br *broker.Broker, n int) {
	t.Helper()
	for range n {
		if _, err := br.PostRoom(ctx, "u0", "room", "hello"); err != nil {
			t.Fatal(err)
		}
	}
}
