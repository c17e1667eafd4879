package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/ssechat/ssechat/broker"
	"github.com/ssechat/ssechat/chat"
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

// A write that reaches the broker after Close is answered at once with
// "unavailable" (a 503), never left waiting for an appender that is gone.
func TestWriteAfterCloseAnswersAtOnce(t *testing.T) {
	br, closeBroker := newBroker(t, broker.Config{})
	ctx := context.Background()
	connectMembers(ctx, t, br, 2)
	closeBroker()
	answered := make(chan error, 1)
	go func() {
		_, err := br.PostRoom(ctx, "u0", "room", "too late")
		answered <- err
	}()
	select {
	case err := <-answered:
		if chat.ErrorCode(err) != chat.EUNAVAILABLE {
			t.Fatalf("write after Close: %v, want unavailable", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a write after Close was never answered")
	}
}
