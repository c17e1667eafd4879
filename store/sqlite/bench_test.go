package sqlite_test

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/ssechat/ssechat/chat"
	"github.com/ssechat/ssechat/store/sqlite"
)

func openBench(b *testing.B) *sqlite.Store {
	b.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func message(i int) chat.Event {
	return chat.Event{Kind: chat.KindMessage, Room: "lobby", From: "alice",
		Text: fmt.Sprintf("message %d of the benchmark", i), TS: time.Now()}
}

// batchOf is a prepare that appends events whatever the head.
func batchOf(events []chat.Event) func(int64, []chat.Event) ([]chat.Event, error) {
	return func(int64, []chat.Event) ([]chat.Event, error) { return events, nil }
}

// BenchmarkAppend is one durable commit (WAL, synchronous=FULL) of a batch
// of messages: the broker commits every POST waiting at that moment in one
// batch, so the cost per message falls with the batch size.
func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			s := openBench(b)
			events := make([]chat.Event, batch)
			for i := range events {
				events[i] = message(i)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Append(context.Background(), math.MaxInt64, batchOf(events)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkEventsAfter is a resume: the user's missed events read with
// index seeks, here 1,000 of them among 20,000 of other rooms' traffic.
func BenchmarkEventsAfter(b *testing.B) {
	s := openBench(b)
	ctx := context.Background()
	join := []chat.Event{{Kind: chat.KindJoin, Room: "lobby", User: "bob", TS: time.Now()}}
	if _, err := s.Append(ctx, math.MaxInt64, batchOf(join)); err != nil {
		b.Fatal(err)
	}
	var batch []chat.Event
	for i := 0; i < 21000; i++ {
		e := message(i)
		if i%21 != 0 {
			e.Room = fmt.Sprintf("other-%d", i%7)
		}
		batch = append(batch, e)
	}
	appended, err := s.Append(ctx, math.MaxInt64, batchOf(batch))
	if err != nil {
		b.Fatal(err)
	}
	head := appended[len(appended)-1].ID
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		events, err := s.EventsAfter(ctx, "bob", 1, head, 1001)
		if err != nil {
			b.Fatal(err)
		}
		if len(events) != 1000 {
			b.Fatalf("replayed %d events, want 1000", len(events))
		}
	}
}
