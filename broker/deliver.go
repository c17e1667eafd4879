package broker

import (
	"runtime"
	"sync/atomic"
	"time"
)

// plan is who gets which event of a batch. It is drawn up under b.mu and
// carried out after releasing it, so that waking thousands of connections
// never holds up a reader of the routing state. A connection that
// registers in between has a head above these events and reads them from
// the store instead; one that closes in between ignores them.
type plan struct {
	conns  []*conn
	events []plannedEvent
}

type plannedEvent struct {
	frame []byte
	id    int64
	end   int // conns[previous end:end] receive frame
}

func (p *plan) addUser(b *Broker, user string) {
	for c := range b.conns[user] {
		p.conns = append(p.conns, c)
	}
}

// addRoom plans delivery to every open connection of room's members.
func (p *plan) addRoom(b *Broker, room string) {
	p.conns = append(p.conns, b.connsOfRoom(room)...)
}

func (p *plan) addUsers(b *Broker, users map[string]struct{}) {
	for u := range users {
		p.addUser(b, u)
	}
}

func (p *plan) seal(frame []byte, id int64) {
	p.events = append(p.events, plannedEvent{frame: frame, id: id, end: len(p.conns)})
}

func (b *Broker) newPlan() *plan {
	select {
	case p := <-b.freePlans:
		return p
	default:
		return &plan{}
	}
}

// runDeliverer carries out the appender's plans one after the other, so
// every connection gets events in log order, and recycles them.
//
// It queues each plan's frames at once but paces the wake-ups. A stream
// write is a system call (10–20 µs on loopback here, most of a fan-out's
// CPU), and a writer woken for every event makes one per event: at 10,000
// streams × 20 msg/s that is 200,000 writes a second, more than the
// machine can make, and the backlog that builds up shows as seconds of
// latency. So the deliverer wakes writers in rounds, like group commit:
// the next round starts once most of the last one has written, and
// frames queued meanwhile go out together, in one write per connection.
// WriteRate bounds how fast rounds follow each other on a fast machine; a
// floor of 10,000 writes a second keeps stalled writers from holding the
// rest back. A small or quiet room waits for nothing.
func (b *Broker) runDeliverer() {
	defer b.done.Done()
	fastest := time.Second / time.Duration(b.cfg.WriteRate)
	slowest := max(fastest, time.Second/minWriteRate)
	var (
		pending []*conn // writers to wake in the next round
		last    *round
		early   time.Time // the next round starts no earlier than this
		late    time.Time // and no later, written or not
		timer   = time.NewTimer(time.Hour)
	)
	timer.Stop()
	plans := b.plans
	for plans != nil || len(pending) > 0 {
		var due <-chan time.Time
		var written <-chan struct{}
		if len(pending) > 0 {
			now := time.Now()
			var wait time.Duration
			switch {
			case plans == nil: // stopping: wake everyone now
			case now.Before(early):
				wait = early.Sub(now)
			case last != nil && !last.finished() && now.Before(late):
				wait, written = late.Sub(now), last.done
			}
			if wait <= 0 {
				last = startRound(pending)
				n := time.Duration(len(pending))
				early, late = now.Add(n*fastest), now.Add(n*slowest)
				clear(pending)
				pending = pending[:0]
				continue
			}
			timer.Reset(wait)
			due = timer.C
		}
		select {
		case p, ok := <-plans:
			if !ok {
				plans = nil
				break
			}
			pending = p.queue(pending)
			select {
			case b.freePlans <- p:
			default:
			}
		case <-due:
		case <-written:
		}
		timer.Stop()
	}
}

// minWriteRate is the slowest the deliverer paces writes however long a
// round's writers take: a few stalled connections must not hold up the
// rest until their write deadline.
const minWriteRate = 10_000

// round is the writers the deliverer woke at once.
type round struct {
	left atomic.Int64  // writers yet to write
	done chan struct{} // closed when all but the stragglers have
	// stragglers is how many may still be writing when the round counts
	// as written: a slow or stalled few must not set the pace.
	stragglers int64
}

func startRound(writers []*conn) *round {
	r := &round{done: make(chan struct{}), stragglers: int64(len(writers) / 20)}
	r.left.Store(int64(len(writers)))
	for _, c := range writers {
		if old := c.round.Swap(r); old != nil {
			old.wrote()
		}
		c.signal()
		// A writer that has ended since its frames were queued will never
		// count itself.
		if c.ctx.Err() != nil && c.round.CompareAndSwap(r, nil) {
			r.wrote()
		}
	}
	return r
}

// wrote counts one of the round's writers as done.
func (r *round) wrote() {
	if r.left.Add(-1) == r.stragglers {
		close(r.done)
	}
}

func (r *round) finished() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// queue hands every planned event to its connections, in log order,
// appends the writers that need waking to woken, and empties the plan for
// reuse.
func (p *plan) queue(woken []*conn) []*conn {
	start := 0
	for _, e := range p.events {
		for _, c := range p.conns[start:e.end] {
			if c.enqueue(e.frame, e.id) {
				woken = append(woken, c)
			}
		}
		start = e.end
	}
	clear(p.conns)
	clear(p.events)
	p.conns, p.events = p.conns[:0], p.events[:0]
	return woken
}

// defaultWriteRate is how many stream writes a second the deliverer allows
// before it batches. Measured on two cores at 5,000 and 10,000 streams ×
// 20 msg/s with the load generator on the same cores (BENCHMARKS.md), p99:
// 40,000 writes/s 198 and 401 ms; 50,000: 184 and 328 ms; 60,000: 156 and
// 557 ms. Past about 25,000 per core the writes, and the clients' reads of
// them, starve everything else, and latency grows instead of shrinking.
func defaultWriteRate() int { return 25_000 * runtime.GOMAXPROCS(0) }
