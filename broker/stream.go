package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/r3labs/sse/v2"

	"github.com/ssechat/ssechat/chat"
)

// Resume is where a client asks its stream to start: after the event id of
// its Last-Event-ID, if it sent one.
type Resume struct {
	After     int64
	Given     bool
	Malformed bool // sent, but not an event id: the stream starts with a reset
}

// conn is one open SSE connection. It owns one r3labs stream, so a stalled
// reader can only ever block its own stream's goroutine.
//
// Until its backlog is replayed a conn is "holding": live events queue in
// held and only the replay goroutine publishes to the stream. Afterwards
// only the fan-out, heartbeat and shutdown publish, each under mu, and
// never after closed is set — r3labs would block forever on a stream whose
// handler has stopped reading.
type conn struct {
	broker       *Broker
	stream       string
	user         string
	resume       Resume
	head         int64 // log position when the connection registered
	ctx          context.Context
	cancel       context.CancelFunc
	unsubscribed chan struct{}
	replayed     chan struct{}
	// unwritten counts events handed to the library and not yet written:
	// the writer flushes only when it reaches zero (see deadlineWriter).
	unwritten atomic.Int64

	rc *http.ResponseController // safe to use from any goroutine for deadlines

	mu       sync.Mutex
	holding  bool
	held     []heldEvent
	closed   bool
	kicked   bool  // closed for falling behind, and counted
	goodbye  bool  // closed by shutdown: say so before closing
	position int64 // id of the last event handed to the stream
}

type heldEvent struct {
	msg *sse.Event
	id  int64
}

func newStreamServer(b *Broker) *sse.Server {
	s := sse.New()
	// The store is the history and we replay from it ourselves; r3labs'
	// replay log never shrinks and rewrites ids.
	s.AutoReplay = false
	s.AutoStream = false
	s.BufferSize = b.cfg.StreamBuffer
	s.Headers = map[string]string{"X-Accel-Buffering": "no"}
	s.OnSubscribe = func(stream string, _ *sse.Subscriber) {
		if c := b.connByStream(stream); c != nil {
			c.replay()
		}
	}
	s.OnUnsubscribe = func(stream string, _ *sse.Subscriber) {
		if c := b.connByStream(stream); c != nil {
			close(c.unsubscribed)
		}
	}
	return s
}

func (b *Broker) connByStream(stream string) *conn {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.byStream[stream]
}

// ServeStream serves user's SSE stream on w until the client goes away, the
// connection falls behind, or the broker shuts down. It first replays what
// the user missed after resume, then a `ready` event, then live events.
// During shutdown it answers with a lone shutdown event instead.
func (b *Broker) ServeStream(ctx context.Context, w http.ResponseWriter, r *http.Request, user string, resume Resume) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := &conn{
		broker:       b,
		stream:       uuid.NewString(),
		user:         user,
		resume:       resume,
		ctx:          ctx,
		cancel:       cancel,
		unsubscribed: make(chan struct{}),
		replayed:     make(chan struct{}),
		holding:      true,
		rc:           http.NewResponseController(w),
	}
	b.streams.CreateStream(c.stream)
	if err := b.register(c); err != nil {
		b.streams.RemoveStream(c.stream)
		sayGoodbyeDirectly(w, c.resume, c.head)
		return
	}
	// byStream keeps c until the library's callbacks for its stream are done.
	defer b.connsDone.Done()

	// The library picks the stream from the query and reads Last-Event-ID
	// itself (answering 400 to a non-number, which makes EventSource give up):
	// the stream is ours to choose, and the resume point was parsed already.
	r = r.WithContext(ctx)
	u := *r.URL
	u.RawQuery = url.Values{"stream": {c.stream}}.Encode()
	r.URL = &u
	r.Header = r.Header.Clone()
	r.Header.Del("Last-Event-ID")

	dw := &deadlineWriter{ResponseWriter: w, rc: c.rc, ctx: ctx, flushErr: flushWithError(w),
		timeout: b.cfg.WriteTimeout, unwritten: &c.unwritten}
	b.streams.ServeHTTP(dw, r)
	if dw.timedOut {
		c.mu.Lock()
		if !c.kicked {
			c.kickLocked("stopped reading")
		}
		c.mu.Unlock()
	}
	cancel()
	b.unregister(c)
	if dw.subscribed {
		<-c.unsubscribed
	}
	b.streams.RemoveStream(c.stream)
	if dw.subscribed {
		<-c.replayed
	}
	b.mu.Lock()
	delete(b.byStream, c.stream)
	b.mu.Unlock()
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
	b.byStream[c.stream] = c
	if len(b.conns[c.user]) == 1 {
		b.markDirty(c.user)
	}
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
	if len(b.conns[c.user]) == 0 {
		delete(b.conns, c.user)
		b.markDirty(c.user)
	}
}

// deliver hands a live event to the connection without ever blocking: a
// connection whose buffer is full is closed and will resume from its
// Last-Event-ID.
func (c *conn) deliver(msg *sse.Event, id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
	case c.holding:
		if len(c.held) >= c.broker.cfg.StreamBuffer*4 {
			c.kickLocked("fell behind during replay")
			return
		}
		c.held = append(c.held, heldEvent{msg, id})
	case !c.tryPublish(msg):
		c.kickLocked("fell behind")
	default:
		c.position = id
	}
}

func (c *conn) kickLocked(reason string) {
	c.closed, c.kicked = true, true
	c.cutOff()
	c.broker.kicked.Add(1)
	c.broker.log.Info("closing slow connection", "user", c.user, "reason", reason, "position", c.position)
}

// cutOff ends the connection now. The library's writer may be blocked in a
// write to a peer that stopped reading, which cancelling does not
// interrupt: expiring the deadline ends that write at once rather than
// after --write-timeout.
func (c *conn) cutOff() {
	c.cancel()
	_ = c.rc.SetWriteDeadline(time.Now())
}

// replay runs once the library has subscribed the connection: it sends the
// backlog (or a reset), then `ready`, then the live events held meanwhile
// whose ids are above the last one sent, and switches to live delivery.
func (c *conn) replay() {
	defer close(c.replayed)
	backlog, reset := c.backlog()
	position := c.head
	if reset != "" {
		if !c.publish(control("reset", c.head, "reason", reset)) {
			return
		}
	} else if c.resume.Given {
		position = c.resume.After
	}
	for _, e := range backlog {
		if !c.publish(encode(e)) {
			return
		}
		position = e.ID
	}
	if !c.publish(control("ready", position, "user", c.user)) {
		return
	}

	// Live events held meanwhile go out the way the backlog did, waiting
	// for room: the queue may well be full right after a long backlog, and
	// that is no reason to cut off a reader who keeps up. The fan-out keeps
	// holding (never blocking) until held is found empty under the lock.
	for {
		c.mu.Lock()
		held := c.held
		c.held = nil
		if len(held) == 0 || c.closed {
			c.holding, c.position = false, position
			if c.goodbye {
				c.sayGoodbyeLocked()
			}
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		for _, h := range held {
			if h.id <= position {
				continue
			}
			if !c.publish(h.msg) {
				return
			}
			position = h.id
		}
	}
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

// publish sends a replayed event, waiting for room in the stream; it fails
// once the connection is gone.
func (c *conn) publish(msg *sse.Event) bool {
	if c.ctx.Err() != nil {
		return false
	}
	c.unwritten.Add(1)
	c.broker.streams.Publish(c.stream, msg)
	return c.ctx.Err() == nil
}

// tryPublish hands msg to the stream if its buffer has room.
func (c *conn) tryPublish(msg *sse.Event) bool {
	c.unwritten.Add(1)
	if !c.broker.streams.TryPublish(c.stream, msg) {
		c.unwritten.Add(-1)
		return false
	}
	return true
}

// control builds a stream event that is not in the log: its id repeats the
// log position so that the browser's Last-Event-ID stays right.
func control(kind string, position int64, key, value string) *sse.Event {
	data, _ := json.Marshal(map[string]string{"id": chat.FormatID(position), key: value})
	return &sse.Event{ID: []byte(chat.FormatID(position)), Event: []byte(kind), Data: data}
}

// runHeartbeat writes a comment line on every live stream so that proxies
// keep idle streams open.
func (b *Broker) runHeartbeat(ctx context.Context) {
	defer b.done.Done()
	tick := time.NewTicker(b.cfg.Heartbeat)
	defer tick.Stop()
	beat := &sse.Event{Comment: []byte("keepalive")}
	for {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
		b.mu.RLock()
		for _, set := range b.conns {
			for c := range set {
				c.mu.Lock()
				if !c.closed && !c.holding {
					// A full buffer is caught by the next real event.
					c.tryPublish(beat)
				}
				c.mu.Unlock()
			}
		}
		b.mu.RUnlock()
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
				if !c.holding {
					c.sayGoodbyeLocked()
				}
			}
			c.mu.Unlock()
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
	b.mu.RLock()
	for _, set := range b.conns {
		for c := range set {
			c.cutOff()
		}
	}
	b.mu.RUnlock()
	<-done
	return ctx.Err()
}

// sayGoodbyeLocked queues the shutdown notice and then an empty event, which
// ends the library's write loop once everything before it is written.
func (c *conn) sayGoodbyeLocked() {
	bye := control("shutdown", c.position, "reason", "server restarting")
	bye.Retry = []byte("1000")
	// The empty event is not counted in unwritten: the library stops at it
	// without flushing, and net/http flushes when the handler returns.
	if !c.tryPublish(bye) || !c.broker.streams.TryPublish(c.stream, &sse.Event{}) {
		c.cancel()
	}
}

// deadlineWriter sits between the library and the connection for two
// reasons the profile gave.
//
// Flushes: r3labs flushes after every event, and a flush is a write system
// call — about two thirds of the server's CPU at 2,000 streams. The writer
// knows from unwritten whether more events for this connection are already
// queued, and then skips the flush: the last event of a burst flushes them
// all in one write. Nothing waits on a timer, so a lone event still goes
// out at once.
//
// Deadlines: it arms a write deadline for each flush's worth of writes,
// so a peer that stopped reading is cut off in seconds, while a stream may
// stay open for days (http.Server.WriteTimeout would kill it at that age).
// The library ignores write errors, so after the first one every write
// fails at once.
type deadlineWriter struct {
	http.ResponseWriter
	rc         *http.ResponseController
	flushErr   func() error
	ctx        context.Context
	timeout    time.Duration
	unwritten  *atomic.Int64
	armed      bool // a deadline is set for the writes since the last flush
	failed     bool
	timedOut   bool // the peer stopped reading: a write hit its deadline
	subscribed bool // the library answered 200: it registered a subscriber
	started    bool // the flush after the headers is done; later ones follow events
}

var errWriterClosed = errors.New("stream closed")

func (w *deadlineWriter) WriteHeader(code int) {
	w.subscribed = code == http.StatusOK
	w.ResponseWriter.WriteHeader(code)
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	if w.failed || w.ctx.Err() != nil {
		w.failed = true
		return 0, errWriterClosed
	}
	w.arm()
	n, err := w.ResponseWriter.Write(p)
	w.fail(err)
	return n, err
}

// Flush is called by the library once per written event (and once after
// the headers, before any event is counted).
func (w *deadlineWriter) Flush() {
	if w.failed {
		return
	}
	first := !w.started
	if !first && w.unwritten.Add(-1) > 0 {
		return
	}
	w.started = w.subscribed
	w.arm()
	if first || w.flushErr == nil {
		// The first flush goes through every wrapper: gin writes the
		// status line only when its own Flush or Write runs.
		w.fail(w.rc.Flush())
	} else {
		w.fail(w.flushErr())
	}
	w.armed = false
}

// flushWithError finds the innermost writer's FlushError: gin's Flush
// swallows the error, and a timed-out flush is how a stalled reader is
// usually noticed.
func flushWithError(w http.ResponseWriter) func() error {
	for {
		if f, ok := w.(interface{ FlushError() error }); ok {
			return f.FlushError
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
}

func (w *deadlineWriter) fail(err error) {
	if err == nil {
		return
	}
	w.failed = true
	var ne net.Error
	w.timedOut = w.timedOut || errors.As(err, &ne) && ne.Timeout()
}

// arm sets the write deadline for the writes up to the next flush. The
// library writes an event in several pieces; reading the clock for each
// of them was a tenth of the server's CPU on the write path.
func (w *deadlineWriter) arm() {
	if w.armed {
		return
	}
	// Not every ResponseWriter supports deadlines (httptest's recorder);
	// then the stream simply has none.
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	w.armed = true
}

// sayGoodbyeDirectly answers a stream that arrives while the server shuts
// down. A 503 would make EventSource give up for good; a 200 stream that
// says "shutdown" and ends makes it retry, elsewhere or after the restart.
// The stream is never registered, so it is written here without the
// library. Its id keeps the client's own position: the head would skip
// events it never got.
func sayGoodbyeDirectly(w http.ResponseWriter, resume Resume, head int64) {
	position := head
	if resume.Given || resume.Malformed {
		position = resume.After
	}
	data, _ := json.Marshal(map[string]string{"id": chat.FormatID(position), "reason": "server restarting"})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if resume.Malformed {
		// No id line: an empty one would reset the client's position.
		fmt.Fprintf(w, "event: shutdown\nretry: 1000\ndata: %s\n\n", data)
		return
	}
	fmt.Fprintf(w, "id: %d\nevent: shutdown\nretry: 1000\ndata: %s\n\n", position, data)
}
