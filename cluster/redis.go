package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is the news of instances that share one Redis server: pub/sub on
// three channels (log, presence, sessions) and the presence sets described
// in scripts.go, all under one key prefix.
//
// Nothing in Redis is the truth. If Redis loses its data (a restart) or
// takes this instance for dead, the next heartbeat re-registers the users
// held here; if the subscription drops, the listener is told to Resync.
type Redis struct {
	client   *redis.Client
	prefix   string
	instance string
	log      *slog.Logger
	timing   timing

	chLog, chPresence, chSessions string

	// regMu orders SetLocal (read-locked, so different users go in
	// parallel) against sync (locked): a sync sends the whole of held in
	// one script, and a SetLocal slipping in between reading held and the
	// script would be undone by it.
	regMu  sync.RWMutex
	heldMu sync.Mutex
	held   map[string]int // users SetLocal was last called for with streams > 0, and that count
	// dirty says that Redis may disagree with held (a SetLocal failed, or
	// found the instance unregistered): the next heartbeat syncs.
	dirty atomic.Bool
	// registered is set by the first heartbeat that succeeds (under
	// regMu), so that later registrations are told apart in the log.
	registered bool

	announceFailing atomic.Bool
	// streamsSkipUntil (unix ns): StreamsElsewhere fails at once until
	// then, after Redis failed to answer it.
	streamsSkipUntil atomic.Int64

	ctx    context.Context // canceled by Close: aborts calls in flight
	cancel context.CancelFunc
	kick   chan struct{} // asks the heartbeat loop to beat now
	pubsub *redis.PubSub
	wg     sync.WaitGroup
	// ready is closed once the first subscription is confirmed; tests wait
	// for it so that they do not publish into the void.
	ready     chan struct{}
	closeOnce sync.Once
}

// timing holds the intervals. They are fields so that tests can shrink
// them between Open and Start.
type timing struct {
	heartbeat time.Duration // how often an instance says it is alive
	sweep     time.Duration // how often an instance looks for dead ones
	// deadAfter is how old a heartbeat may grow before the instance is
	// dropped: four missed beats, so that a GC pause or a slow Redis is
	// not a death. Heartbeat + deadAfter + sweep bound how long the users
	// of a killed instance stay online (30 s).
	deadAfter time.Duration
	op        time.Duration // bound on one call to Redis
	announce  time.Duration // bound on Announce, which the write path waits for
}

var defaultTiming = timing{
	heartbeat: 5 * time.Second,
	sweep:     5 * time.Second,
	deadAfter: 20 * time.Second,
	op:        2 * time.Second,
	announce:  time.Second,
}

// subscriptionBuffer is how many messages go-redis queues for the
// listener. Past it go-redis waits (see Start), so it only smooths bursts.
const subscriptionBuffer = 4096

// Open connects to url (redis://HOST:PORT/N) and checks that Redis
// answers. Every key and channel starts with prefix; instance must be
// unique to this process (a fresh uuid), for a restarted process must not
// inherit the presence of its predecessor.
func Open(ctx context.Context, url, prefix, instance string, log *slog.Logger) (*Redis, error) {
	if instance == "" {
		return nil, errors.New("cluster: empty instance id")
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("cluster: redis url: %w", err)
	}
	// Without it go-redis ignores our deadlines once a command is on the
	// wire, and a Redis that stopped answering would hold Announce and
	// Close for the socket timeouts instead.
	opt.ContextTimeoutEnabled = true
	if opt.DialTimeout == 0 {
		opt.DialTimeout = defaultTiming.op
	}
	// Each command already retries a failed dial (MaxRetries, with
	// backoff); go-redis's five dial attempts within each of those made
	// every call on a Redis that is down take the full op timeout.
	opt.DialerRetries = 1
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client := redis.NewClient(opt)
	r := &Redis{
		client:     client,
		prefix:     prefix,
		instance:   instance,
		log:        log.With("instance", instance),
		timing:     defaultTiming,
		chLog:      prefix + "log",
		chPresence: prefix + "presence",
		chSessions: prefix + "sessions",
		held:       make(map[string]int),
		kick:       make(chan struct{}, 1),
		ready:      make(chan struct{}),
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	if err := r.Ping(ctx); err != nil {
		r.cancel()
		_ = client.Close()
		return nil, err
	}
	return r, nil
}

// Start subscribes and starts the heartbeat; it returns at once. l is
// called from one goroutine, one call at a time, in the order Redis
// published the news, until Close returns. Call it once.
//
// News published before the subscription is confirmed (normally a round
// trip after Start) is not seen. If Redis cannot be reached now, the
// subscription is retried in the background and Resync is called when it
// succeeds.
func (r *Redis) Start(ctx context.Context, l Listener) {
	ctx, cancel := context.WithTimeout(ctx, r.timing.op)
	defer cancel()
	r.pubsub = r.client.Subscribe(ctx)
	// go-redis remembers the channels even when this fails, and
	// subscribes to them whenever it reconnects.
	err := r.pubsub.Subscribe(ctx, r.chLog, r.chPresence, r.chSessions)
	if err != nil {
		r.log.Warn("cluster: subscribe failed, retrying in the background", "err", err)
	}
	// A send that waits on a slow listener must not drop the message, as
	// go-redis does after a minute by default: nothing would tell the
	// listener. Waiting instead lets Redis's output buffer limit cut the
	// subscriber off, and the resubscription ends in a Resync.
	ch := r.pubsub.ChannelWithSubscriptions(
		redis.WithChannelSize(subscriptionBuffer),
		redis.WithChannelSendTimeout(24*time.Hour),
	)
	r.wg.Add(2)
	go r.dispatch(ch, l, err != nil)
	go r.keepAlive()
}

// dispatch is the one goroutine that calls the listener.
func (r *Redis) dispatch(ch <-chan any, l Listener, failedFirst bool) {
	defer r.wg.Done()
	subscribed := false
	for {
		select {
		case <-r.ctx.Done():
			// go-redis closes ch once the PubSub is closed; reading it to
			// the end lets its goroutine finish a send and exit.
			for range ch {
			}
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			switch m := m.(type) {
			case *redis.Subscription:
				// Subscribing to three channels is confirmed three
				// times; the third says we hear everything again.
				if m.Kind != "subscribe" || m.Count != 3 {
					continue
				}
				first := !subscribed
				if first {
					subscribed = true
					if !failedFirst {
						// News between the instance's start (when
						// the listener loaded who is online) and now
						// went unheard: a user who came online on
						// another instance meanwhile would stay
						// offline here until their next change.
						// Before ready, so that whoever waits for
						// the subscription finds it done.
						l.Resync()
						close(r.ready)
						continue
					}
					close(r.ready)
				}
				r.rejoin()
				r.log.Info("cluster: subscribed again, resyncing")
				l.Resync()
			case *redis.Message:
				r.deliver(l, m)
			}
		}
	}
}

// rejoin beats until a beat succeeds, for at most the op timeout. After a
// reconnection Redis may have restarted empty, and go-redis may still
// refuse commands for a second while it probes the server it failed to
// dial: waiting for a beat before the Resync means the listener reloads
// from a Redis that answers and already lists this instance's users (the
// others' follow as presence news). News meanwhile waits in go-redis's
// buffer.
func (r *Redis) rejoin() {
	deadline := time.Now().Add(r.timing.op)
	for {
		err := r.beat()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.log.Warn("cluster: heartbeat after resubscribing", "err", err)
			return
		}
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (r *Redis) deliver(l Listener, m *redis.Message) {
	switch m.Channel {
	case r.chLog:
		head, err := strconv.ParseInt(m.Payload, 10, 64)
		if err != nil {
			r.log.Warn("cluster: bad log notice", "payload", m.Payload)
			return
		}
		l.LogGrew(head)
	case r.chPresence:
		if m.Payload == "" {
			r.log.Warn("cluster: empty presence notice")
			return
		}
		l.PresenceChanged(m.Payload[1:], m.Payload[0] == '1')
	case r.chSessions:
		l.SessionEnded(m.Payload)
	}
}

// keepAlive beats and sweeps until Close.
func (r *Redis) keepAlive() {
	defer r.wg.Done()
	beat := time.NewTicker(r.timing.heartbeat)
	defer beat.Stop()
	sweep := time.NewTicker(r.timing.sweep)
	defer sweep.Stop()
	// Redis being down is logged when it starts and when it ends, not
	// every beat.
	failing := false
	report := func(what string, err error) {
		switch {
		case err != nil && !failing && r.ctx.Err() == nil:
			failing = true
			r.log.Warn("cluster: redis unreachable", "during", what, "err", err)
		case err != nil:
			r.log.Debug("cluster: redis still unreachable", "during", what, "err", err)
		case failing:
			failing = false
			r.log.Info("cluster: redis reachable again")
		}
	}
	report("heartbeat", r.beat())
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-beat.C:
			report("heartbeat", r.beat())
		case <-r.kick:
			report("heartbeat", r.beat())
		case <-sweep.C:
			report("sweep", r.sweep())
		}
	}
}

// beat records the heartbeat and, when Redis forgot this instance or may
// disagree with it, syncs every user held here.
func (r *Redis) beat() error {
	ctx, cancel := context.WithTimeout(r.ctx, r.timing.op)
	defer cancel()
	r.regMu.Lock()
	defer r.regMu.Unlock()
	if r.ctx.Err() != nil {
		// Closed: a beat now would undo the goodbye.
		return nil
	}
	added, err := beatScript.Run(ctx, r.client, nil, r.prefix, r.instance).Int()
	if err != nil {
		return fmt.Errorf("cluster: heartbeat: %w", err)
	}
	if added == 0 && !r.dirty.Load() {
		r.registered = true
		return nil
	}
	if added == 1 && r.registered {
		r.log.Info("cluster: instance was not registered (redis restarted, or took us for dead): re-registering")
	}
	r.dirty.Store(false)
	r.heldMu.Lock()
	args := make([]any, 0, 2+2*len(r.held))
	args = append(args, r.prefix, r.instance)
	for u, n := range r.held {
		args = append(args, u, n)
	}
	r.heldMu.Unlock()
	if err := syncScript.Run(ctx, r.client, nil, args...).Err(); err != nil {
		r.dirty.Store(true)
		return fmt.Errorf("cluster: sync %d users: %w", (len(args)-2)/2, err)
	}
	r.registered = true
	return nil
}

// sweep drops the instances that stopped beating. Every instance sweeps,
// and the script runs atomically, so a dead one is dropped (and its users
// announced offline) exactly once, by whichever instance comes first.
func (r *Redis) sweep() error {
	ctx, cancel := context.WithTimeout(r.ctx, r.timing.op)
	defer cancel()
	n, err := sweepScript.Run(ctx, r.client, nil, r.prefix, r.instance, r.timing.deadAfter.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("cluster: sweep: %w", err)
	}
	if n > 0 {
		r.log.Info("cluster: dropped dead instances", "count", n)
	}
	return nil
}

// Announce publishes that the log grew to head. It is best effort: the
// other instances also notice the log on their own, so a failure is only
// logged. It ignores ctx's cancellation, for the log grew even if the
// poster has gone, but waits at most a second.
func (r *Redis) Announce(ctx context.Context, head int64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timing.announce)
	defer cancel()
	err := r.client.Publish(ctx, r.chLog, strconv.FormatInt(head, 10)).Err()
	switch {
	case err != nil && !r.announceFailing.Swap(true):
		r.log.Warn("cluster: announce failed", "head", head, "err", err)
	case err != nil:
		r.log.Debug("cluster: announce failed", "head", head, "err", err)
	case r.announceFailing.Swap(false):
		r.log.Info("cluster: announce works again")
	}
}

// SetLocal records how many streams of user this instance holds (0:
// none). The user comes online when the first instance holds some and
// goes offline when the last stops; every instance is told of that once.
// Calling it again with the same count changes nothing, so a caller may
// retry after an error. Even on an error the wish is remembered, and the
// heartbeat brings Redis in line once it answers again.
func (r *Redis) SetLocal(ctx context.Context, user string, streams int) error {
	holds := streams > 0
	ctx, cancel := context.WithTimeout(ctx, r.timing.op)
	defer cancel()
	r.regMu.RLock()
	defer r.regMu.RUnlock()
	if r.ctx.Err() != nil {
		// Closed: a join now would register the instance again after
		// its goodbye, and it would linger until swept.
		return errors.New("cluster: closed")
	}
	r.heldMu.Lock()
	if holds {
		r.held[user] = streams
	} else {
		delete(r.held, user)
	}
	r.heldMu.Unlock()
	var err error
	if holds {
		var added int
		added, err = joinScript.Run(ctx, r.client, nil, r.prefix, r.instance, user, streams).Int()
		if err == nil && added == 1 {
			r.dirty.Store(true)
			select {
			case r.kick <- struct{}{}:
			default:
			}
		}
	} else {
		err = leaveScript.Run(ctx, r.client, nil, r.prefix, r.instance, user).Err()
	}
	if err != nil {
		r.dirty.Store(true)
		return fmt.Errorf("cluster: set %q streams=%d: %w", user, streams, err)
	}
	return nil
}

// Online lists the users online on any live instance.
func (r *Redis) Online(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timing.op)
	defer cancel()
	users, err := r.client.SMembers(ctx, r.prefix+"online").Result()
	if err != nil {
		return nil, fmt.Errorf("cluster: online: %w", err)
	}
	return users, nil
}

// StreamsElsewhere counts the streams of user that the other instances
// last reported (SetLocal). An instance that died without a goodbye counts
// until it is swept as dead (within 30 s). It waits at most streamsTimeout
// for Redis, and after a failure answers an error at once for a second,
// so that a Redis that hangs costs a stream's open little (the caller
// then counts this instance's streams only).
func (r *Redis) StreamsElsewhere(ctx context.Context, user string) (int, error) {
	if time.Now().UnixNano() < r.streamsSkipUntil.Load() {
		return 0, errors.New("cluster: redis failed a moment ago")
	}
	ctx, cancel := context.WithTimeout(ctx, streamsTimeout)
	defer cancel()
	counts, err := r.client.HGetAll(ctx, r.prefix+"streams:"+user).Result()
	if err != nil {
		r.streamsSkipUntil.Store(time.Now().Add(time.Second).UnixNano())
		return 0, fmt.Errorf("cluster: streams of %q: %w", user, err)
	}
	n := 0
	for id, v := range counts {
		if id == r.instance {
			continue // the caller counts its own streams itself, exactly
		}
		if c, err := strconv.Atoi(v); err == nil && c > 0 {
			n += c
		}
	}
	return n, nil
}

// streamsTimeout bounds StreamsElsewhere: opening a stream waits for it.
const streamsTimeout = 250 * time.Millisecond

// EndSession tells every instance, this one included, that the session
// whose key is key ended.
func (r *Redis) EndSession(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(ctx, r.timing.op)
	defer cancel()
	if err := r.client.Publish(ctx, r.chSessions, key).Err(); err != nil {
		return fmt.Errorf("cluster: end session: %w", err)
	}
	return nil
}

// Ping checks that Redis answers.
func (r *Redis) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.timing.op)
	defer cancel()
	if err := r.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("cluster: ping redis: %w", err)
	}
	return nil
}

// Close says goodbye (the users held only here go offline, and every
// instance is told), stops the goroutines and closes the connections.
// The listener is not called after it returns. With Redis down it gives
// up on the goodbye after a few seconds; the other instances then sweep
// this one as dead.
func (r *Redis) Close() error {
	return r.shutdown(true)
}

// shutdown stops everything; without goodbye it leaves this instance's
// presence behind, as a killed process would (tests use that).
func (r *Redis) shutdown(goodbye bool) error {
	var err error
	r.closeOnce.Do(func() {
		r.cancel()
		if goodbye {
			// Wait for a heartbeat in flight first: one finishing after
			// the goodbye would register the instance again.
			r.regMu.Lock()
			ctx, cancel := context.WithTimeout(context.Background(), r.timing.op)
			if e := goodbyeScript.Run(ctx, r.client, nil, r.prefix, r.instance).Err(); e != nil {
				err = fmt.Errorf("cluster: goodbye: %w", e)
			}
			cancel()
			r.regMu.Unlock()
		}
		if r.pubsub != nil {
			_ = r.pubsub.Close()
		}
		r.wg.Wait()
		if e := r.client.Close(); e != nil && err == nil {
			err = fmt.Errorf("cluster: close redis: %w", e)
		}
	})
	return err
}
