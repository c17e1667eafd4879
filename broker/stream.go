package broker

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssechat/ssechat/chat"
)

// Resume is where a client asks its stream to start: after the event id of
// its Last-Event-ID, if it sent one.
type Resume struct {
	After     int64
	Given     bool
	Malformed bool // sent, but not an event id: the stream starts with a reset
}

// conn is one open SSE connection and its writer.
//
// Frames reach the writer through queue, under mu, and a wake-up: the
// fan-out appends a whole batch's frames before it wakes anyone, and the
// writer takes everything queued at once and sends it in one write. A
// connection whose queue is full has stopped keeping up: it is closed and
// resumes from its Last-Event-ID. Full means StreamBuffer events queued
// behind a write that has waited stuckWrite for the client (a write that
// blocks for a moment is not a slow client), or four times as many in
// any case (a writer waiting out its gap or its turn is ours to end).
//
// Until its backlog is replayed a conn is "holding": logged events wait in
// held, and the writer sends them after the backlog, dropping those the
// backlog already covered. Live notices (presence, counts) are dropped
// while holding: the snapshot sent on going live is newer.
type conn struct {
	broker  *Broker
	user    string
	session string // key of the session that opened it
	resume  Resume
	head    int64 // log position when the connection registered
	ctx     context.Context
	cancel  context.CancelFunc
	out     sink
	wake    chan struct{}
	// writeStarted is when the write in progress started (Unix
	// nanoseconds), 0 between writes.
	writeStarted atomic.Int64

	mu       sync.Mutex
	queue    [][]byte
	woken    bool // the writer has been woken and has not yet taken the queue
	holding  bool
	held     []heldEvent
	closed   bool // no more frames are taken
	kicked   bool // closed for falling behind, and counted
	kickWhy  string
	goodbye  bool  // closed by shutdown: say so before closing
	position int64 // id of the last event queued
}

type heldEvent struct {
	frame []byte
	id    int64
}

// ServeStream serves user's SSE stream until the client goes away, the
// connection falls behind, or the broker shuts down. It first replays what
// the user missed after resume, then a `ready` event, then live events.
// During shutdown it answers with a lone shutdown event instead.
//
// An HTTP/1 connection is taken over from net/http (see takeOver) and
// ServeStream returns at once; the stream's own goroutines serve it from
// then on. Other streams are served on the calling goroutine.
//
// session is the key of the session that opened the stream: EndSession
// closes it.
func (b *Broker) ServeStream(ctx context.Context, w http.ResponseWriter, r *http.Request, user, session string, resume Resume) {
	c := &conn{broker: b, user: user, session: session, resume: resume, holding: true, wake: make(chan struct{}, 1)}
	if resume.Given && resume.After > b.appliedHead() {
		// Last-Event-ID from an instance that applied more of the log than
		// this one: catch up first, so that the stream registers at or
		// above the client's position and its ids never go down.
		if err := b.catchUp(ctx, resume.After); err != nil {
			b.log.Warn("catch up for a resume", "user", user, "after", resume.After, "err", err)
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	taken, err := takeOver(w, r, b.cfg.WriteTimeout)
	if err == nil {
		// The request's context ends when this handler returns.
		c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(ctx))
		c.out = taken
	} else {
		c.ctx, c.cancel = context.WithCancel(ctx)
		c.out = newResponseSink(w, b.cfg.WriteTimeout)
	}
	if err := b.register(c); err != nil {
		// A 503 would make EventSource give up for good; a stream that
		// says "shutdown" and ends makes it retry, elsewhere or after the
		// restart. Its id keeps the client's own position: the head would
		// skip events it never got.
		position := c.head
		if resume.Given {
			position = resume.After
		}
		if c.out.start() == nil && c.out.send([][]byte{goodbyeFrame(position, !resume.Malformed)}) == nil {
			c.out.end()
		}
		c.out.close()
		c.cancel()
		return
	}
	if taken == nil {
		c.run()
		return
	}
	b.connsDone.Add(1)
	go func() {
		defer b.connsDone.Done()
		taken.hangUps(c.cancel)
	}()
	go c.run()
}

func (b *Broker) register(c *conn) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	c.head = b.head
	if b.closing {
		return errShuttingDown
	}
	if b.conns[c.user] == nil {
		b.conns[c.user] = make(map[*conn]struct{})
	}
	b.conns[c.user][c] = struct{}{}
	b.stats.streams.Add(1)
	b.connsChanged(c.user)
	b.markDirty(c.user)
	b.connsDone.Add(1)
	return nil
}

func (b *Broker) unregister(c *conn) {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.conns[c.user], c)
	b.stats.streams.Add(-1)
	b.connsChanged(c.user)
	if len(b.conns[c.user]) == 0 {
		delete(b.conns, c.user)
	}
	b.markDirty(c.user)
}

// run is the connection's writer: the backlog first, then whatever the
// fan-out, the heartbeat and shutdown queue, until the stream ends.
func (c *conn) run() {
	defer c.finish()
	if err := c.out.start(); err != nil || !c.replay() {
		return
	}
	var batch [][]byte
	var lastWrite time.Time // of a live batch; the replay does not delay the first
	var gap *time.Timer
	for {
		select {
		case <-c.wake:
		case <-c.ctx.Done():
			return
		}
		if !c.waitGap(lastWrite, &gap) {
			return
		}
		c.mu.Lock()
		batch, c.queue = c.queue, batch[:0]
		c.woken = false
		goodbye, position := c.goodbye, c.position
		c.mu.Unlock()
		if len(batch) > 0 {
			// The gap counts from the write's start: one that was slow
			// to drain has batched enough while it lasted.
			lastWrite = time.Now()
			c.writeStarted.Store(lastWrite.UnixNano())
			if !c.write(batch) {
				return
			}
			c.writeStarted.Store(0)
		}
		if goodbye {
			c.sayGoodbye(position)
			return
		}
		clear(batch)
		if cap(batch) > 64 && len(batch) < cap(batch)/4 {
			// The burst is waning: an idle connection keeps no large
			// queue. A busy one keeps both of its queues: regrowing
			// them for every write was half of what the write path
			// allocated.
			batch = nil
		}
	}
}

// waitGap waits until WriteGap has passed since the last write, so that a
// busy stream's events go out together: a small room whose members post
// back-to-back sends each stream thousands of events a second, and one
// write per event (and one read per write for the client) is most of what
// such a stream costs. A stream that was quiet for WriteGap waits for
// nothing. A wake-up ends the wait early: the queue is half full (see
// enqueue) or the stream is ending. It reports false when the stream has
// ended.
func (c *conn) waitGap(lastWrite time.Time, timer **time.Timer) bool {
	wait := c.broker.cfg.WriteGap - time.Since(lastWrite)
	if wait <= 0 {
		return true
	}
	c.mu.Lock()
	urgent := c.goodbye || c.halfFull()
	c.mu.Unlock()
	if urgent {
		return true
	}
	if *timer == nil {
		*timer = time.NewTimer(wait)
	} else {
		(*timer).Reset(wait)
	}
	select {
	case <-(*timer).C:
	case <-c.wake:
		(*timer).Stop()
	case <-c.ctx.Done():
		(*timer).Stop()
		return false
	}
	return true
}

// write sends frames, or ends the stream if it cannot.
func (c *conn) write(frames [][]byte) bool {
	if c.ctx.Err() != nil {
		return false
	}
	err := c.out.send(frames)
	if err == nil {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.mu.Lock()
		kick := !c.kicked && c.markKicked("stopped reading")
		c.mu.Unlock()
		if kick {
			c.kick()
		}
	}
	c.cancel()
	return false
}

func (c *conn) sayGoodbye(position int64) {
	if c.write([][]byte{goodbyeFrame(position, true)}) {
		c.out.end()
	}
}

func (c *conn) finish() {
	c.cancel()
	c.broker.unregister(c)
	c.out.close()
	c.broker.connsDone.Done()
}

// wakeUp is what a connection's writer needs after enqueue.
type wakeUp int

const (
	noWake    wakeUp = iota
	pacedWake        // in its turn (see runDeliverer)
	wakeNow          // its queue is filling up while it waits its turn or its gap
	kickNow          // it fell behind: the caller calls kick, holding no lock
)

// enqueue hands a frame to the writer without ever blocking, and reports
// whether the writer needs waking: the caller wakes it once it has queued
// everything it has. id is the frame's event id (its stream position for
// a live notice), 0 for a comment.
func (c *conn) enqueue(frame []byte, id int64, live bool) wakeUp {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return noWake
	case c.holding:
		if id == 0 || live {
			return noWake
		}
		if len(c.held) >= c.broker.cfg.StreamBuffer*4 {
			c.markKicked("fell behind during replay")
			return kickNow
		}
		c.held = append(c.held, heldEvent{frame, id})
		return noWake
	case len(c.queue) >= c.broker.cfg.StreamBuffer && c.stuck(),
		len(c.queue) >= c.broker.cfg.StreamBuffer*4:
		c.markKicked("fell behind")
		return kickNow
	}
	c.queue = append(c.queue, frame)
	if id != 0 {
		c.position = id
	}
	switch {
	case !c.woken:
		c.woken = true
		return pacedWake
	case len(c.queue) == c.broker.cfg.StreamBuffer/2: // just became halfFull
		return wakeNow
	}
	return noWake
}

// halfFull reports whether the queue should go out without waiting for
// the writer's gap or turn: waiting longer could see the stream cut off
// for falling behind.
func (c *conn) halfFull() bool {
	return len(c.queue) >= c.broker.cfg.StreamBuffer/2
}

// stuckWrite is how long a write may wait for its client before a full
// queue behind it means the client is not keeping up. Shorter waits are
// the kernel's buffers filling for a moment: a write carrying a burst can
// block for milliseconds on a client that reads everything.
const stuckWrite = 100 * time.Millisecond

func (c *conn) stuck() bool {
	started := c.writeStarted.Load()
	return started != 0 && time.Since(time.Unix(0, started)) >= stuckWrite
}

// signal wakes the writer.
func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// markKicked closes the connection to new frames for falling behind; the
// caller holds c.mu, and calls kick once it has let go of every lock:
// closing a socket and logging are no work to do under them.
func (c *conn) markKicked(reason string) bool {
	c.closed, c.kicked, c.kickWhy = true, true, reason
	return true
}

// kick cuts off a connection marked kicked, and counts it.
func (c *conn) kick() {
	c.cutOff()
	c.broker.kicked.Add(1)
	c.mu.Lock()
	reason, position := c.kickWhy, c.position
	c.mu.Unlock()
	c.broker.log.Info("closing slow connection", "user", c.user, "reason", reason, "position", position)
}

// cutOff ends the connection now, even if its writer is blocked in a
// write to a peer that stopped reading.
func (c *conn) cutOff() {
	c.cancel()
	c.out.abort()
}

// replay sends the backlog (or a reset), then `ready`, then the live
// events held meanwhile whose ids are above the last one sent, and
// switches to live delivery. It reports whether the stream goes on.
func (c *conn) replay() bool {
	backlog, reset := c.backlog()
	position := c.head
	frames := make([][]byte, 0, len(backlog)+2)
	if reset != "" {
		frames = append(frames, controlFrame("reset", c.head, "reason", reset))
	} else if c.resume.Given {
		position = c.resume.After
	}
	for _, e := range backlog {
		frames = append(frames, eventFrame(e))
		position = e.ID
	}
	c.broker.stats.replayed.Add(int64(len(backlog)))
	frames = append(frames, controlFrame("ready", position, "user", c.user))
	if !c.write(frames) {
		return false
	}
	// The fan-out keeps holding (never blocking) until held is found empty
	// under the lock.
	for {
		if live, goodbye, closed := c.goLive(position); live {
			if goodbye {
				c.sayGoodbye(position)
			}
			return !closed
		}
		c.mu.Lock()
		held := c.held
		c.held = nil
		c.mu.Unlock()
		frames = frames[:0]
		for _, h := range held {
			if h.id > position {
				frames = append(frames, h.frame)
				position = h.id
			}
		}
		if len(frames) > 0 && !c.write(frames) {
			return false
		}
	}
}

// goLive switches the connection to live delivery if nothing is held, and
// queues the live snapshot at position for the writer. b.mu is held for
// reading throughout, so no presence change is planned between the
// snapshot and the switch; one planned earlier and still on its way is
// older than the snapshot and is sent after it, which the next change
// corrects, or dropped if it arrives before the switch.
func (c *conn) goLive(position int64) (live, goodbye, closed bool) {
	c.broker.mu.RLock()
	defer c.broker.mu.RUnlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.held) > 0 && !c.closed {
		return false, false, false
	}
	c.holding, c.position = false, position
	if !c.closed {
		c.queue = append(c.queue, c.broker.liveSnapshot(c.user, position)...)
		if len(c.queue) > 0 && !c.woken {
			c.woken = true
			c.signal()
		}
	}
	return true, c.goodbye, c.closed
}

// backlog reads what the client missed, or says why it cannot.
func (c *conn) backlog() ([]chat.Event, string) {
	switch {
	case c.resume.Malformed:
		return nil, "malformed Last-Event-ID"
	case !c.resume.Given || c.resume.After == c.head:
		return nil, ""
	case c.resume.After > c.head || c.resume.After < 0:
		return nil, "unknown Last-Event-ID"
	}
	limit := c.broker.cfg.ReplayLimit
	events, err := c.broker.store.EventsAfter(c.ctx, c.user, c.resume.After, c.head, limit+1)
	var gap *chat.Error
	switch {
	case errors.As(err, &gap):
		// The store knows the gap cannot be filled (past retention, say).
		return nil, gap.Message
	case err != nil:
		if !isCanceled(err) {
			c.broker.log.Error("read backlog", "user", c.user, "after", c.resume.After, "err", err)
		}
		return nil, "history unavailable"
	case len(events) > limit:
		return nil, "too many missed events"
	}
	c.broker.mu.RLock()
	defer c.broker.mu.RUnlock()
	visible := events[:0]
	for _, e := range events {
		if c.broker.visible(c.user, e) {
			visible = append(visible, e)
		}
	}
	return visible, ""
}

// allConns appends every open connection to out.
func (b *Broker) allConns(out []*conn) []*conn {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, set := range b.conns {
		for c := range set {
			out = append(out, c)
		}
	}
	return out
}

// runHeartbeat writes a comment on every live stream so that proxies keep
// idle streams open.
func (b *Broker) runHeartbeat(ctx context.Context) {
	tick := time.NewTicker(b.cfg.Heartbeat)
	defer tick.Stop()
	beat := heartbeatFrame()
	var woken, all []*conn
	for {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
		all := b.allConns(all[:0])
		for _, c := range all {
			switch c.enqueue(beat, 0, false) {
			case noWake:
			case kickNow:
				c.kick()
			default:
				woken = append(woken, c)
			}
		}
		clear(all)
		for _, c := range woken {
			c.signal()
		}
		clear(woken)
		woken = woken[:0]
	}
}

// Shutdown stops taking streams and tells every open stream to reconnect
// (a `shutdown` event with a retry hint), then waits until they have closed
// or ctx ends, when it cuts the rest off.
func (b *Broker) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	b.closing = true
	for _, set := range b.conns {
		for c := range set {
			c.mu.Lock()
			if !c.closed {
				c.closed, c.goodbye = true, true
			}
			c.mu.Unlock()
			c.signal()
		}
	}
	b.mu.Unlock()

	done := make(chan struct{})
	go func() {
		b.connsDone.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	for _, c := range b.allConns(nil) {
		c.cutOff()
	}
	<-done
	return ctx.Err()
}
