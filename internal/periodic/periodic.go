// Package periodic runs housekeeping (pruning history, expired sessions)
// now and then in the background, stoppably.
package periodic

import (
	"context"
	"sync"
	"time"
)

// Every runs fn at once and then every interval in a goroutine, until the
// returned stop is called. stop cancels the context fn is given, waits for
// a run in progress and may be called twice. ctx's values reach fn, its
// cancellation does not: only stop ends the runs.
func Every(ctx context.Context, interval time.Duration, fn func(ctx context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			fn(ctx)
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
}
