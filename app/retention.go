package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/ssechat/ssechat/internal/periodic"
)

// historyPruneEvery is how often history older than --history-retention
// is deleted.
const historyPruneEvery = time.Minute

// historyPruner deletes the oldest events of the log written before
// cutoff and says how many.
type historyPruner interface {
	Prune(ctx context.Context, cutoff time.Time) (int64, error)
}

// keepHistory prunes events older than retention now and then every
// interval, until the returned stop is called; stop waits for a prune in
// progress and may be called twice. A failed prune is logged and retried
// at the next tick: retention is housekeeping, never a reason to stop
// serving.
func keepHistory(ctx context.Context, st historyPruner, retention, interval time.Duration, log *slog.Logger) (stop func()) {
	return periodic.Every(ctx, interval, func(ctx context.Context) {
		n, err := st.Prune(ctx, time.Now().Add(-retention))
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("prune history", "retention", retention, "err", err)
		case n > 0:
			log.Info("pruned history", "events", n, "retention", retention)
		}
	})
}
