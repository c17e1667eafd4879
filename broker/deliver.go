package broker

import (
	"runtime"
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
	urgent []*conn
}

type plannedEvent struct {
	frame []byte
	id    int64
	live  bool // a presence or counts notice, not a logged event
	end   int  // conns[previous end:end] receive frame
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

func (p *plan) seal(frame []byte, id int64, live bool) {
	p.events = append(p.events, plannedEvent{frame: frame, id: id, live: live, end: len(p.conns)})
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
// latency. So writers wait their turn in a queue that is woken at
// WriteRate, in bursts of at most burstWindow's worth: frames queued for a
// connection while it waits go out together, in one write. A small or
// quiet room waits for nothing; a 10,000-member room's writers are woken
// over 10,000 / WriteRate seconds, evenly, not all at once.
func (b *Broker) runDeliverer() {
	defer b.delivers.Done()
	rate := float64(b.cfg.WriteRate)
	burst := max(1, rate*burstWindow.Seconds())
	tokens, last := burst, time.Now()
	var waiting []*conn // writers to wake, in the order their first frame was queued
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	plans := b.plans
	for plans != nil || len(waiting) > 0 {
		var due <-chan time.Time
		if len(waiting) > 0 {
			now := time.Now()
			tokens = min(burst, tokens+now.Sub(last).Seconds()*rate)
			last = now
			n := len(waiting)
			if plans != nil { // when stopping, wake everyone now
				n = min(n, int(tokens))
			}
			for _, c := range waiting[:n] {
				c.signal()
			}
			tokens -= float64(n)
			clear(waiting[:n])
			waiting = waiting[n:]
			if plans == nil {
				return // everyone is awake and nothing more will come
			}
			if len(waiting) > 0 {
				timer.Reset(wakeTick)
				due = timer.C
			}
		}
		select {
		case p, ok := <-plans:
			if !ok {
				plans = nil
				break
			}
			b.stats.countDeliveries(p)
			waiting = p.queue(waiting)
			select {
			case b.freePlans <- p:
			default:
			}
		case <-due:
		}
		timer.Stop()
	}
}

const (
	// burstWindow is how many seconds' worth of wake-ups may happen at
	// once after a quiet spell.
	burstWindow = 5 * time.Millisecond
	// wakeTick is how often a queue of waiting writers is served.
	wakeTick = time.Millisecond
)

// queue hands every planned event to its connections, in log order,
// appends the writers that need waking in their turn to woken, wakes
// those that cannot wait, and empties the plan for reuse.
func (p *plan) queue(woken []*conn) []*conn {
	start := 0
	for _, e := range p.events {
		for _, c := range p.conns[start:e.end] {
			switch c.enqueue(e.frame, e.id, e.live) {
			case pacedWake:
				woken = append(woken, c)
			case wakeNow:
				p.urgent = append(p.urgent, c)
			case kickNow:
				c.kick()
			}
		}
		start = e.end
	}
	// Only now: a writer woken halfway through would send half the plan.
	for _, c := range p.urgent {
		c.signal()
	}
	clear(p.conns)
	clear(p.events)
	clear(p.urgent)
	p.conns, p.events, p.urgent = p.conns[:0], p.events[:0], p.urgent[:0]
	return woken
}

// defaultWriteRate is how many stream writes a second the deliverer allows
// before it batches. Measured on two cores at 5,000 and 10,000 streams ×
// 20 msg/s with the load generator on the same cores (BENCHMARKS.md), p99:
// 40,000 writes/s 143 and 264 ms; 50,000: 114 and 272 ms; 60,000: 118 and
// 244 ms but a full core at 10,000. Past about 25,000 per core the writes,
// and the clients' reads of them, starve everything else.
func defaultWriteRate() int { return 25_000 * runtime.GOMAXPROCS(0) }
