package broker

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/ssechat/ssechat/chat"
)

// Metrics receives the broker's timings. The broker's counts are not
// pushed to it: they are atomic counters read by Stats when metrics are
// scraped, so that the fan-out pays one uncontended add per plan, never
// a call per frame.
type Metrics interface {
	// ObserveCommit records how long one Store.Append took (the
	// transaction, the catch-up it runs under the log's lock, and the
	// commit), whether it succeeded or not. It is called by the appender
	// alone, once per batch, and must be cheap.
	ObserveCommit(d time.Duration)
}

// Stats is what the broker has counted since it started.
type Stats struct {
	// StreamsOpen is how many streams this instance holds now.
	StreamsOpen int64
	// UsersOnline is how many users are online on any instance, as this
	// instance knows it.
	UsersOnline int64
	// Events counts, by kind, the logged events this instance applied
	// (message, private, join, leave, read: its own appends and those of other
	// instances alike) and the live notices it planned to send (presence,
	// members).
	Events map[chat.Kind]int64
	// Deliveries counts the event frames the fan-out handed to streams'
	// queues: one per event and stream it was planned for, logged or live.
	// Replays, the live snapshot after `ready`, heartbeats and shutdown
	// notices are not counted.
	Deliveries int64
	// Kicked counts streams closed because they fell behind.
	Kicked int64
	// Replayed counts the logged events resumed streams replayed.
	Replayed int64
}

// eventKinds are the kinds Stats.Events counts, in counters.events order.
var eventKinds = [...]chat.Kind{chat.KindMessage, chat.KindPrivate, chat.KindJoin, chat.KindLeave, chat.KindRead, chat.KindPresence, chat.KindMembers}

// counters are the broker's counts. Each is written by few goroutines
// (the applier under b.seq, the deliverer, the streams as they open and
// close) and read only by Stats.
type counters struct {
	streams    atomic.Int64
	events     [len(eventKinds)]atomic.Int64
	deliveries atomic.Int64
	replayed   atomic.Int64
}

// countEvent counts one event of kind applied or planned.
func (s *counters) countEvent(kind chat.Kind) {
	for i, k := range eventKinds {
		if k == kind {
			s.events[i].Add(1)
			return
		}
	}
}

// countDeliveries counts the frames a plan hands to streams; the
// deliverer calls it before queueing the plan, which empties it.
func (s *counters) countDeliveries(p *plan) {
	s.deliveries.Add(int64(len(p.conns)))
}

// Stats returns the broker's counts.
func (b *Broker) Stats() Stats {
	st := Stats{
		StreamsOpen: b.stats.streams.Load(),
		Events:      make(map[chat.Kind]int64, len(eventKinds)),
		Deliveries:  b.stats.deliveries.Load(),
		Kicked:      b.kicked.Load(),
		Replayed:    b.stats.replayed.Load(),
	}
	for i, k := range eventKinds {
		st.Events[k] = b.stats.events[i].Load()
	}
	b.mu.RLock()
	st.UsersOnline = int64(len(b.online))
	b.mu.RUnlock()
	return st
}

// timedStore times every Append for Metrics.
type timedStore struct {
	Store
	metrics Metrics
}

// timeAppends returns store, timing its appends if m is not nil.
func timeAppends(store Store, m Metrics) Store {
	if m == nil {
		return store
	}
	return timedStore{store, m}
}

func (s timedStore) Append(ctx context.Context, after int64, prepare func(head int64, newer []chat.Event) ([]chat.Event, error)) ([]chat.Event, error) {
	start := time.Now()
	events, err := s.Store.Append(ctx, after, prepare)
	s.metrics.ObserveCommit(time.Since(start))
	return events, err
}
