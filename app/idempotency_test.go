package app

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ssechat/ssechat/chat"
)

// prunes records the prunes asked of it and deletes a batch's worth for
// the first few.
type prunes struct {
	mu      sync.Mutex
	cutoffs []time.Time
	full    int // how many calls find a full batch
	ran     chan struct{}
}

func (p *prunes) PruneIdempotencyKeys(_ context.Context, before time.Time, limit int) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutoffs = append(p.cutoffs, before)
	if len(p.cutoffs) <= p.full {
		return int64(limit), nil
	}
	select {
	case p.ran <- struct{}{}:
	default:
	}
	return 3, nil
}

// Keys older than their lifetime are pruned at start, batch after batch
// until one is not full.
func TestKeepIdempotencyKeysPrunesExpired(t *testing.T) {
	p := &prunes{full: 2, ran: make(chan struct{}, 1)}
	start := time.Now()
	stop := keepIdempotencyKeys(context.Background(), p, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
	select {
	case <-p.ran:
	case <-time.After(10 * time.Second):
		t.Fatal("no prune at start")
	}
	stop()
	end := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.cutoffs) != 3 {
		t.Fatalf("%d prunes at start, want 3 (two full batches, then one that is not)", len(p.cutoffs))
	}
	for _, c := range p.cutoffs {
		if c.Before(start.Add(-chat.IdempotencyTTL)) || c.After(end.Add(-chat.IdempotencyTTL)) {
			t.Fatalf("pruned keys from before %v, want those older than %v", c, chat.IdempotencyTTL)
		}
	}
}
