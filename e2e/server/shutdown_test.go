//go:build unix

package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssechat/ssechat/app"
	"github.com/ssechat/ssechat/broker"
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

// Graceful shutdown ends within its timeout even when a client stopped
// reading: its goodbye cannot be written, so once the timeout passes the
// server must cut it off rather than wait for its write deadline.
func TestShutdownWithAStalledReaderEndsWithinItsTimeout(t *testing.T) {
	const shutdownTimeout = time.Second
	a, err := app.New(context.Background(), app.Config{
		DB:           filepath.Join(t.TempDir(), "chat.db"),
		PasswordCost: 4,
		// A queue that never overflows and a deadline far away: only the
		// shutdown can end the stalled stream in time.
		Broker: broker.Config{StreamBuffer: 4096, WriteTimeout: 12 * time.Second},
		Static: os.DirFS(filepath.Join(repoRoot(), "static")),
		Log:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, sigterm := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, smallBufferListener{ln}, shutdownTimeout) }()
	t.Cleanup(func() {
		sigterm()
		<-served // Serve closes the app
	})

	srv := &chattest.Server{URL: "http://" + ln.Addr().String(), App: a}
	sam, alice := srv.Login(t, "sam"), srv.Login(t, "alice")
	sam.Join("lobby")
	alice.Join("lobby")
	aliceS := alice.Stream("")
	aliceS.Ready()
	openStalled(t, srv.URL, sam.Token, "")
	waitPresence(aliceS, "sam", "online")
	// 120 KB is more than the kernel buffers between the server and sam
	// hold: his stream's writer is now blocked.
	filler := strings.Repeat("x", 3900)
	for i := range 30 {
		e := alice.Say("lobby", fmt.Sprintf("%d %s", i, filler))
		aliceS.Until(func(f chattest.Frame) bool { return f.ID == e.ID })
	}

	start := time.Now()
	sigterm()
	if frames := aliceS.Ended(); len(frames) == 0 || frames[len(frames)-1].Kind != "shutdown" {
		t.Fatalf("alice's stream ended with %s, want shutdown", chattest.Kinds(frames))
	}
	select {
	case err := <-served:
		served <- err // for the cleanup
		within(t, "the graceful shutdown", time.Since(start), shutdownTimeout+time.Second)
	case <-time.After(chattest.Timeout):
		t.Fatalf("Serve still running %v after the signal (shutdown timeout %v)", chattest.Timeout, shutdownTimeout)
	}
}
