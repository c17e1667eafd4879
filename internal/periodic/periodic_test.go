package periodic

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// fn runs at once and again every interval; stop ends the runs, waits
// for one in progress, and may be called twice.
func TestEvery(t *testing.T) {
	var runs atomic.Int64
	started := make(chan struct{}, 10)
	stop := Every(context.Background(), time.Millisecond, func(ctx context.Context) {
		runs.Add(1)
		select {
		case started <- struct{}{}:
		default:
		}
	})
	for range 3 {
		select {
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatal("fn did not run again")
		}
	}
	stop()
	after := runs.Load()
	stop()
	if runs.Load() != after {
		t.Fatalf("fn ran after stop returned: %d runs, then %d", after, runs.Load())
	}
}
