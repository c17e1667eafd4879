package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/ssechat/ssechat/broker"
)

// Writers waiting for their turn (see --write-rate) when the broker closes
// are woken at once, and Close returns: a server must stop however much
// delivery is still paced.
func TestCloseWithWritersWaiting(t *testing.T) {
	// One write a second: all but the first member wait their turn.
	br, closeBroker := newBroker(t, broker.Config{WriteRate: 1})
	ctx := context.Background()
	connectMembers(ctx, t, br, 20)
	for range 3 {
		if _, err := br.PostRoom(ctx, "u0", "room", "hello"); err != nil {
			t.Fatal(err)
		}
	}
	closed := make(chan struct{})
	go func() {
		closeBroker()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return with writers waiting")
	}
}
