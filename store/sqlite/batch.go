package sqlite

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// execBatcher commits the single-statement writes that arrive together —
// registrations, logins, logouts — in one transaction. Each commit is an
// fsync; a crowd logging in at once would otherwise queue behind one fsync
// per statement on the one write connection.
type execBatcher struct {
	store *Store
	reqs  chan execRequest
	done  chan struct{}

	mu     sync.RWMutex // held for reading while sending on reqs
	closed bool
}

type execRequest struct {
	query string
	args  []any
	reply chan error
}

const maxExecBatch = 256

var errStoreClosed = errors.New("store closed")

func newExecBatcher(s *Store) *execBatcher {
	b := &execBatcher{store: s, reqs: make(chan execRequest, maxExecBatch), done: make(chan struct{})}
	go b.run()
	return b
}

// exec runs one statement and returns once it is committed. A statement
// that fails (a unique violation, say) fails alone: SQLite rolls back the
// statement, not the transaction.
func (b *execBatcher) exec(ctx context.Context, query string, args ...any) error {
	req := execRequest{query: query, args: args, reply: make(chan error, 1)}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return errStoreClosed
	}
	select {
	case b.reqs <- req:
	case <-ctx.Done():
		b.mu.RUnlock()
		return ctx.Err()
	}
	b.mu.RUnlock()
	return <-req.reply
}

func (b *execBatcher) run() {
	defer close(b.done)
	batch := make([]execRequest, 0, maxExecBatch)
	for req := range b.reqs {
		batch = append(batch[:0], req)
	fill:
		for len(batch) < maxExecBatch {
			select {
			case r, ok := <-b.reqs:
				if !ok {
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		b.commit(batch)
	}
}

func (b *execBatcher) commit(batch []execRequest) {
	// Not the callers' contexts: one caller giving up must not roll back
	// the others' writes.
	ctx := context.Background()
	tx, err := b.store.write.BeginTx(ctx, nil)
	if err != nil {
		for _, r := range batch {
			r.reply <- fmt.Errorf("begin: %w", err)
		}
		return
	}
	errs := make([]error, len(batch))
	for i, r := range batch {
		_, errs[i] = tx.ExecContext(ctx, r.query, r.args...)
	}
	if err := tx.Commit(); err != nil {
		for _, r := range batch {
			r.reply <- fmt.Errorf("commit: %w", err)
		}
		return
	}
	for i, r := range batch {
		r.reply <- errs[i]
	}
}

// close answers what is queued and stops.
func (b *execBatcher) close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.reqs)
	}
	b.mu.Unlock()
	<-b.done
}
