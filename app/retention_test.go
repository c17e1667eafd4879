package app

import (
	"context"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/ssechat/ssechat/chat"
	"github.com/ssechat/ssechat/store/sqlite"
)

// History older than the retention goes at start and, as more of it ages
// past the retention, at a later tick; stop may be called twice.
func TestKeepHistoryPrunesAtStartAndOnEveryTick(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "chat.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	old := time.Now().Add(-2 * time.Hour)
	appendOld := func() int64 {
		t.Helper()
		events := make([]chat.Event, 10)
		for i := range events {
			events[i] = chat.Event{Kind: chat.KindMessage, Room: "lobby", From: "alice", Text: "hi", TS: old}
		}
		out, err := st.Append(ctx, math.MaxInt64, func(int64, []chat.Event) ([]chat.Event, error) { return events, nil })
		if err != nil {
			t.Fatal(err)
		}
		return out[len(out)-1].ID
	}
	prunedThrough := func(what string, want int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			b, err := st.PrunedThrough(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if b == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("keepHistory did not prune %s", what)
			}
			time.Sleep(5 * time.Millisecond) // polling, with the deadline above
		}
	}

	last := appendOld()
	stop := keepHistory(ctx, st, time.Hour, 20*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer stop()
	prunedThrough("at start", last)
	// Events that age past the retention later (written with an old time
	// here) go at a later tick.
	prunedThrough("on a later tick", appendOld())
	stop()
	stop() // twice is fine: app.Close may run after a failed Serve
}
