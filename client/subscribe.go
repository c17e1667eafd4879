package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/r3labs/sse/v2"
)

// DefaultHeartbeatTimeout is how long a stream may stay silent before
// Subscribe gives up on it and reconnects: three of the server's default
// heartbeats (15 s).
const DefaultHeartbeatTimeout = 45 * time.Second

// ErrSilent is the reason OnReconnect is given when a stream sent nothing,
// not even a heartbeat, for the heartbeat timeout: a proxy or the network
// lost it without closing it.
var ErrSilent = errors.New("ssechat: the stream went silent")

// ErrStreamEnded is the reason OnReconnect is given when the server ended
// the stream (it shut down, or the stream fell too far behind).
var ErrStreamEnded = errors.New("ssechat: the server ended the stream")

// shutdownSpread is how far past the server's retry: hint a client waits,
// at random, after a shutdown: the clients of a restarting server come back
// spread over these seconds instead of all at once (as the browser's do).
const shutdownSpread = 5 * time.Second

// SubscribeOption configures Subscribe.
type SubscribeOption func(*subscription)

// ResumeFrom starts the stream after the event id, the ID of the last
// event a program handled (kept across its restarts, say): the server
// replays what came since, exactly once and in order, or sends KindReset
// when it cannot. Without it the stream starts at the present.
func ResumeFrom(id string) SubscribeOption {
	return func(s *subscription) { s.last = id }
}

// HeartbeatTimeout sets how long the stream may be silent (the server
// sends a heartbeat every --heartbeat, 15 s by default) before Subscribe
// reconnects; keep it a few heartbeats long. Zero or less never gives up.
// The default is DefaultHeartbeatTimeout.
func HeartbeatTimeout(d time.Duration) SubscribeOption {
	return func(s *subscription) { s.heartbeat = d }
}

// OnReconnect has f called each time the stream is lost, with the reason
// and how long Subscribe waits before it reconnects: for a program's log.
// It runs on Subscribe's goroutine; keep it quick.
func OnReconnect(f func(err error, delay time.Duration)) SubscribeOption {
	return func(s *subscription) { s.onReconnect = f }
}

// Subscribe reads the user's event stream and calls handler with each
// event, one at a time, in the stream's order, on the caller's goroutine.
// It returns ctx.Err() once ctx ends, handler's error as it is if handler
// fails, or an *APIError when the server refuses the stream for good (401:
// the session ended; any other 4xx but 429).
//
// Everything else is retried for as long as ctx lasts: a lost connection,
// a server that restarts (KindShutdown is handed to handler first; the
// reconnection waits the server's retry: hint plus a random 0–5 s, so
// that a server's clients do not all come back at once), a stream silent
// for longer than HeartbeatTimeout, 429 and 5xx answers.
// Each reconnection resumes after the last event handler returned nil
// for, with backoff, so handler sees every message, private message, join,
// leave and read exactly once and in order, unless the server cannot fill the
// gap: it then gets a KindReset event and should reload history. Presence
// and member counts are live state: after each KindReady the stream says
// again who is online.
//
// To resume after a program's own restart, keep the ID of the last event
// handled and pass it to ResumeFrom. Events of kinds this package does not
// know are handed over with their Kind and Data.
func (c *Client) Subscribe(ctx context.Context, handler func(Event) error, opts ...SubscribeOption) error {
	if c.baseErr != nil {
		return c.baseErr
	}
	s := &subscription{c: c, handler: handler, heartbeat: DefaultHeartbeatTimeout,
		jitter: rand.N[time.Duration]}
	for _, o := range opts {
		o(s)
	}
	if n, err := strconv.ParseInt(s.last, 10, 64); err == nil {
		s.logged = n
	}
	bo := backoff{min: 100 * time.Millisecond, max: 10 * time.Second}
	for {
		err := s.connect(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var herr handlerError
		if errors.As(err, &herr) {
			return herr.err
		}
		if s.ready {
			bo.reset()
			s.ready = false
		}
		delay := bo.next()
		var apiErr *APIError
		if errors.As(err, &apiErr) {
			if apiErr.Status < 500 && apiErr.Status != http.StatusTooManyRequests {
				return err
			}
			delay = max(delay, apiErr.RetryAfter)
		}
		if s.retry > 0 {
			delay = max(delay, s.retry+s.jitter(shutdownSpread))
			s.retry = 0
		}
		if s.onReconnect != nil {
			s.onReconnect(err, delay)
		}
		if sleep(ctx, delay) != nil {
			return ctx.Err()
		}
	}
}

// subscription is the state of one Subscribe.
type subscription struct {
	c           *Client
	handler     func(Event) error
	heartbeat   time.Duration
	onReconnect func(error, time.Duration)
	// jitter returns a random wait in [0, n): rand.N, or a stand-in in
	// tests.
	jitter func(n time.Duration) time.Duration

	// last is the Last-Event-ID of the next connection: the id of the
	// last event handled.
	last string
	// logged is the id of the last logged event handled (or of a reset):
	// a logged event at or below it was handled already.
	logged int64
	// ready: the connection got as far as KindReady, so the next
	// reconnection starts its backoff afresh.
	ready bool
	// retry is the server's retry: hint, the least wait before the next
	// connection.
	retry time.Duration
}

// handlerError carries the handler's error out of connect.
type handlerError struct{ err error }

func (e handlerError) Error() string { return fmt.Sprintf("handler: %v", e.err) }

// never is a backoff.BackOff (gopkg.in/cenkalti/backoff.v1) that never
// retries (-1 is backoff.Stop): Subscribe reconnects by itself, because
// r3labs/sse's own retries go on after ctx ends, do not resume from the
// last event handled, and end at a clean end of stream anyway.
type never struct{}

func (never) NextBackOff() time.Duration { return -1 }
func (never) Reset()                     {}

// connect reads one connection of the stream until it ends, ctx ends, the
// stream goes silent or handler fails. Every goroutine it starts has ended
// when it returns.
func (s *subscription) connect(ctx context.Context) error {
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	sc := sse.NewClient(s.c.base.String()+"/api/stream", sse.ClientMaxBufferSize(1<<20))
	sc.Connection = s.c.stream
	sc.ReconnectStrategy = never{}
	sc.ResponseValidator = validateStream
	if t := s.c.Token(); t != "" {
		sc.Headers["Authorization"] = "Bearer " + t
	}
	if s.last != "" {
		sc.LastEventID.Store([]byte(s.last))
	}

	// The library hands events over on its goroutine; this channel brings
	// them to ours, and gives up once the connection is being ended so
	// that the library's goroutines can finish.
	events := make(chan *sse.Event)
	ended := make(chan error, 1)
	go func() {
		ended <- sc.SubscribeRawWithContext(actx, func(e *sse.Event) {
			select {
			case events <- e:
			case <-actx.Done():
			}
		})
	}()
	stop := func(reason error) error {
		cancel()
		<-ended
		return reason
	}

	var silence <-chan time.Time
	var timer *time.Timer
	if s.heartbeat > 0 {
		timer = time.NewTimer(s.heartbeat)
		defer timer.Stop()
		silence = timer.C
	}
	for {
		select {
		case err := <-ended:
			if err == nil {
				return ErrStreamEnded
			}
			return err
		case <-silence:
			return stop(ErrSilent)
		case <-ctx.Done():
			return stop(ctx.Err())
		case e := <-events:
			if ctx.Err() != nil {
				// The handler (or anyone) ended ctx: hand over nothing
				// more, though an event was ready at the same time.
				return stop(ctx.Err())
			}
			if err := s.handle(e); err != nil {
				return stop(handlerError{err})
			}
			// After the handler, which may have taken long: the
			// silence is the stream's, not the program's.
			if timer != nil {
				timer.Reset(s.heartbeat)
			}
		}
	}
}

// validateStream turns an answer other than 200 into an *APIError (the
// library would only say "could not connect").
func validateStream(_ *sse.Client, resp *http.Response) error {
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return apiError(resp, data)
}

// handle hands one event of the stream to the handler, unless it is a
// heartbeat or was handled already.
func (s *subscription) handle(raw *sse.Event) error {
	if len(raw.Event) == 0 && len(raw.Data) == 0 {
		// r3labs turns a comment (our heartbeat) into an empty event
		// with the last id: it only shows that the stream is alive.
		return nil
	}
	var e Event
	// A kind this package does not know may carry anything: its data is
	// handed over as it came even if it is not an object of known fields.
	_ = json.Unmarshal(raw.Data, &e)
	e.Kind = Kind(raw.Event)
	if e.Kind == "" {
		e.Kind = KindMessage // the SSE default
	}
	e.ID = string(raw.ID)
	e.Data = string(raw.Data)
	if ms, err := strconv.Atoi(string(raw.Retry)); err == nil && ms > 0 {
		s.retry = time.Duration(ms) * time.Millisecond
	}

	id, idErr := strconv.ParseInt(e.ID, 10, 64)
	if e.Kind.logged() && idErr == nil && id <= s.logged {
		// Replayed twice (a resume from before an event already
		// handled): the server's ids say it is the same event.
		return nil
	}
	if err := s.handler(e); err != nil {
		return err
	}
	switch {
	case e.Kind == KindReset && idErr == nil:
		// The log starts over at the reset's id (a restored or
		// replaced database may hold fewer events than were seen):
		// what comes next is new, whatever its id.
		s.logged = id
	case e.Kind.logged() && idErr == nil:
		s.logged = id
	case e.Kind == KindReady:
		s.ready = true
	}
	if e.ID != "" {
		s.last = e.ID
	}
	return nil
}
