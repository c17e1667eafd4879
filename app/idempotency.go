package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/ssechat/ssechat/chat"
	"github.com/ssechat/ssechat/internal/periodic"
)

// keyPruneEvery is how often expired Idempotency-Keys are deleted.
const keyPruneEvery = time.Minute

// keyPruneBatch bounds one pruning statement, so that it never holds
// SQLite's one write connection for long.
const keyPruneBatch = 500

// keyPruner deletes Idempotency-Keys stored before before, at most limit
// at a time.
type keyPruner interface {
	PruneIdempotencyKeys(ctx context.Context, before time.Time, limit int) (int64, error)
}

// keepIdempotencyKeys deletes expired Idempotency-Keys now and then every
// interval, until the returned stop is called. An expired key is ignored
// whether or not it was deleted (the broker judges a key by its event's
// age), so a failed prune is only logged and retried at the next tick.
func keepIdempotencyKeys(ctx context.Context, st keyPruner, interval time.Duration, log *slog.Logger) (stop func()) {
	return periodic.Every(ctx, interval, func(ctx context.Context) {
		var total int64
		for {
			n, err := st.PruneIdempotencyKeys(ctx, time.Now().Add(-chat.IdempotencyTTL), keyPruneBatch)
			total += n
			if err != nil {
				if ctx.Err() == nil {
					log.Error("prune idempotency keys", "err", err)
				}
				return
			}
			if n < keyPruneBatch {
				break
			}
		}
		if total > 0 {
			log.Info("pruned expired idempotency keys", "keys", total)
		}
	})
}
