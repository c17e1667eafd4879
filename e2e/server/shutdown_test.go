package server_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ssechat/ssechat/internal/chattest"
)

// A stream requested while the server is shutting down (the listener may
// still hand over a request that was already on its way) must not get an
// error status: EventSource treats any non-200 answer as final and never
// reconnects. It should get 200 and a shutdown event with a retry hint,
// like the streams that were open.
func TestStreamOpenedDuringShutdownIsToldToRetry(t *testing.T) {
	srv := chattest.Start(t)
	alice := srv.Login(t, "alice")
	alice.Join("lobby")
	said := alice.Say("lobby", "a position to resume from")
	open := alice.Stream("")
	open.Ready()
	done := make(chan error, 1)
	go func() { done <- srv.App.Broker().Shutdown(context.Background()) }()
	if frames := open.Ended(); len(frames) == 0 || frames[len(frames)-1].Kind != "shutdown" {
		t.Fatalf("the open stream ended with %s", chattest.Kinds(frames))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The HTTP server is still up: only the broker is closing.
	late := alice.Stream("") // fails the test unless the status is 200
	frames := late.Ended()
	if len(frames) != 1 || frames[0].Kind != "shutdown" || frames[0].Retry == "" {
		t.Fatalf("a stream opened during shutdown got %s, want one shutdown event with a retry hint", chattest.Kinds(frames))
	}
	// A resuming client keeps its position: the goodbye must not move its
	// Last-Event-ID past events it has not read.
	before := num(t, said.ID) - 1
	resumed := alice.Stream(fmt.Sprint(before)).Ended()
	if len(resumed) != 1 || resumed[0].Kind != "shutdown" || resumed[0].ID != fmt.Sprint(before) {
		t.Fatalf("a resume from %d during shutdown got %s, want a shutdown event with id %d", before, chattest.Kinds(resumed), before)
	}
}
