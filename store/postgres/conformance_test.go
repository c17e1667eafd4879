package postgres_test

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/ssechat/ssechat/chat"
	"github.com/ssechat/ssechat/internal/pgtest"
	"github.com/ssechat/ssechat/store/postgres"
	"github.com/ssechat/ssechat/store/storetest"
)

var _ storetest.Store = (*postgres.Store)(nil)

// open opens a store on a schema of the test's own on the shared server.
func open(t *testing.T) *postgres.Store {
	t.Helper()
	return openURL(t, pgtest.FreshSchema(t, pgtest.URL(t)))
}

func openURL(t *testing.T, url string) *postgres.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	base := pgtest.URL(t) // skip once, not in every subtest
	storetest.Run(t, func(t *testing.T) storetest.Store { return openURL(t, pgtest.FreshSchema(t, base)) })
}

// Instances that start together on a new database all come up: one
// migrates, the others wait for it and find nothing left to do.
func TestConcurrentStartMigratesOnce(t *testing.T) {
	url := pgtest.FreshSchema(t, pgtest.URL(t))
	const instances = 4
	stores := make([]*postgres.Store, instances)
	errs := make([]error, instances)
	var wg sync.WaitGroup
	for i := range instances {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			stores[i], errs[i] = postgres.Open(ctx, url)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	ctx := context.Background()
	if err := stores[0].CreateUser(ctx, "alice", []byte("h")); err != nil {
		t.Fatal(err)
	}
	if name, _, err := stores[instances-1].User(ctx, "ALICE"); err != nil || name != "alice" {
		t.Fatalf("another instance reads %q, %v", name, err)
	}
}

// The hammer: two instances (two pools) append from many goroutines while
// a reader tails the log as a broker does, always from the last id it saw.
// If a later id could become visible before an earlier one, the reader
// would step past the earlier one and never see it.
func TestTwoInstancesAppendInOrder(t *testing.T) {
	url := pgtest.FreshSchema(t, pgtest.URL(t))
	a, b := openURL(t, url), openURL(t, url)
	reader := openURL(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const writers, appends = 8, 60 // per instance
	total := 0
	for w := range writers {
		for i := range appends {
			total += 1 + (w+i)%4
		}
	}
	total *= 2

	errc := make(chan error, 2*writers+1)
	written := make(chan struct{})
	seen := make(chan []int64, 1)
	go func() {
		var got []int64
		var last int64
		for {
			// Once the writers are done, one more empty read means the
			// reader has caught up with everything.
			done := false
			select {
			case <-written:
				done = true
			default:
			}
			events, err := reader.Tail(ctx, last, 200)
			if err != nil {
				errc <- err
				break
			}
			for _, e := range events {
				got = append(got, e.ID)
				last = e.ID
			}
			if done && len(events) == 0 {
				break
			}
		}
		seen <- got
	}()
	var wg sync.WaitGroup
	for inst, s := range []*postgres.Store{a, b} {
		for w := range writers {
			wg.Go(func() {
				for i := range appends {
					n := 1 + (w+i)%4
					out, err := s.Append(ctx, math.MaxInt64, func(head int64, _ []chat.Event) ([]chat.Event, error) {
						events := make([]chat.Event, n)
						for j := range events {
							events[j] = chat.Event{Kind: chat.KindMessage, Room: "lobby",
								From: fmt.Sprintf("i%dw%d", inst, w), Text: "x", TS: time.Now()}
						}
						return events, nil
					})
					if err != nil {
						errc <- err
						return
					}
					if len(out) != n {
						errc <- fmt.Errorf("appended %d events, want %d", len(out), n)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(written)
	got := <-seen
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	for i, id := range got {
		if id != int64(i)+1 {
			t.Fatalf("the reader saw id %d at position %d, want %d: it skipped or repeated one", id, i, i+1)
		}
	}
	if len(got) != total {
		t.Fatalf("the reader saw %d events, want %d", len(got), total)
	}
	if head, err := a.Head(ctx); err != nil || head != int64(total) {
		t.Fatalf("head %d (%v), want %d", head, err, total)
	}
}

// Names are unique whatever their case, as in the SQLite store, and an
// unknown session or user is a domain error, not an outage.
func TestDomainErrors(t *testing.T) {
	s := open(t)
	ctx := context.Background()
	if err := s.CreateUser(ctx, "Bob", []byte("h")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want chat.Code
	}{
		{"taken name", s.CreateUser(ctx, "bOB", []byte("h")), chat.ECONFLICT},
		{"unknown session", func() error { _, err := s.Session(ctx, []byte("nope")); return err }(), chat.EUNAUTHORIZED},
		{"unknown user", func() error { _, _, err := s.User(ctx, "carol"); return err }(), chat.ENOTFOUND},
	} {
		if got := chat.ErrorCode(tc.err); got != tc.want {
			t.Errorf("%s: %v (code %s), want %s", tc.name, tc.err, got, tc.want)
		}
	}
}
