package postgres_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/ssechat/ssechat/chat"
	"github.com/ssechat/ssechat/internal/pgtest"
	"github.com/ssechat/ssechat/store/postgres"
)

func openBench(b *testing.B) *postgres.Store {
	b.Helper()
	s, err := postgres.Open(context.Background(), pgtest.FreshSchema(b, pgtest.URL(b)))
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

// BenchmarkAppend is one durable commit (synchronous_commit=on) of a batch
// of messages, as store/sqlite's BenchmarkAppend: the broker commits every
// POST waiting at that moment in one batch, so the cost per message falls
// with the batch size. Run against the server of CHAT_POSTGRES_URL.
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

// BenchmarkAppendTwoInstances is BenchmarkAppend's batch of 16 from two
// pools at once, as two instances would append: they take turns on the
// log's lock, so this is the lock's throughput, not twice one instance's.
func BenchmarkAppendTwoInstances(b *testing.B) {
	url := pgtest.FreshSchema(b, pgtest.URL(b))
	a, err := postgres.Open(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	c, err := postgres.Open(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	events := make([]chat.Event, 16)
	for i := range events {
		events[i] = message(i)
	}
	b.ResetTimer()
	done := make(chan error, 2)
	for _, s := range []*postgres.Store{a, c} {
		go func() {
			for i := 0; i < b.N/2; i++ {
				if _, err := s.Append(context.Background(), math.MaxInt64, batchOf(events)); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N/2*2*len(events))/b.Elapsed().Seconds(), "msgs/s")
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
