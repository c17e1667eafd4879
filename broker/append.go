package broker

import (
	"context"
	"time"

	"github.com/ssechat/ssechat/chat"
)

// request is one write waiting for the appender.
type request struct {
	event chat.Event
	reply chan result
}

type result struct {
	event chat.Event
	err   error
}

// submit queues a write and waits until it is durable and fanned out.
func (b *Broker) submit(ctx context.Context, e chat.Event) (chat.Event, error) {
	req := &request{event: e, reply: make(chan result, 1)}
	select {
	case b.requests <- req:
	case <-ctx.Done():
		return chat.Event{}, ctx.Err()
	}
	// Once queued the write will be answered: waiting for that answer even
	// if the client went away keeps "acknowledged" and "durable" the same.
	res := <-req.reply
	return res.event, res.err
}

// runAppender is the only writer of the event log. It takes every write
// queued so far as one batch, validates each against the routing state as
// the batch's earlier writes leave it, commits the batch in one transaction
// (one fsync for many writes), then fans the events out in id order and
// answers the writers. One goroutine doing this is what gives every stream
// strictly increasing ids.
func (b *Broker) runAppender(ctx context.Context) {
	defer b.done.Done()
	batch := make([]*request, 0, b.cfg.MaxBatch)
	var recount <-chan time.Time // armed while a large room's counts are stale
	for {
		batch = batch[:0]
		counts := false
		select {
		case req := <-b.requests:
			batch = append(batch, req)
		case <-b.wake:
		case <-recount:
			recount, counts = nil, true
		case <-ctx.Done():
			b.drainOnStop()
			close(b.plans)
			return
		}
	fill:
		for len(batch) < b.cfg.MaxBatch {
			select {
			case req := <-b.requests:
				batch = append(batch, req)
			default:
				break fill
			}
		}
		b.appendBatch(ctx, batch, counts)
		if recount == nil && b.countsStale() {
			recount = time.After(b.cfg.MembersInterval)
		}
	}
}

func (b *Broker) countsStale() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.recounts) > 0
}

// takeRecounts turns the large rooms whose membership or presence changed
// into members events.
func (b *Broker) takeRecounts(now time.Time) []chat.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	var events []chat.Event
	for room := range b.recounts {
		online := 0
		for u := range b.rooms[room] {
			if len(b.conns[u]) > 0 {
				online++
			}
		}
		events = append(events, chat.Event{Kind: chat.KindMembers, Room: room,
			Members: len(b.rooms[room]), Online: online, TS: now})
		delete(b.recounts, room)
	}
	return events
}

func (b *Broker) drainOnStop() {
	for {
		select {
		case req := <-b.requests:
			req.reply <- result{err: errShuttingDown}
		default:
			return
		}
	}
}

// membershipOverlay records the joins and leaves earlier in a batch, so
// that later writes in the same batch are checked against them.
type membershipOverlay map[[2]string]bool

func (b *Broker) isMember(o membershipOverlay, user, room string) (member, roomExists bool) {
	if m, ok := o[[2]string{user, room}]; ok {
		return m, true
	}
	members, ok := b.rooms[room]
	if !ok {
		return false, false
	}
	_, member = members[user]
	return member, true
}

func (b *Broker) appendBatch(ctx context.Context, batch []*request, counts bool) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	events := make([]chat.Event, 0, len(batch))
	owners := make([]*request, 0, len(batch))
	overlay := membershipOverlay{}

	b.mu.RLock()
	for _, req := range batch {
		e := req.event
		e.TS = now
		actor := e.User
		if e.Kind == chat.KindMessage {
			actor = e.From
		}
		member, exists := b.isMember(overlay, actor, e.Room)
		switch {
		case e.Kind == chat.KindJoin && member, e.Kind == chat.KindLeave && !member:
			req.reply <- result{} // changes nothing: a repeated join, say
			continue
		case e.Kind == chat.KindMessage && !exists:
			req.reply <- result{err: chat.Errorf(chat.ENOTFOUND, "no room %q", e.Room)}
			continue
		case e.Kind == chat.KindMessage && !member:
			req.reply <- result{err: chat.Errorf(chat.EFORBIDDEN, "you are not a member of %q", e.Room)}
			continue
		case e.Kind == chat.KindJoin, e.Kind == chat.KindLeave:
			overlay[[2]string{e.User, e.Room}] = e.Kind == chat.KindJoin
		}
		events = append(events, e)
		owners = append(owners, req)
	}
	b.mu.RUnlock()
	events = append(events, b.takePresenceChanges(now)...)
	if counts {
		events = append(events, b.takeRecounts(now)...)
	}
	if len(events) == 0 {
		return
	}

	// A batch once begun is committed even if the broker is stopping: its
	// writers are waiting for the answer. Without cancellation the SQLite
	// driver also skips the goroutine it starts per statement to watch
	// the context.
	appended, err := b.store.Append(context.WithoutCancel(ctx), events)
	if err != nil {
		b.log.Error("append events", "count", len(events), "err", err)
		for _, req := range owners {
			req.reply <- result{err: err}
		}
		b.requeue(events)
		return
	}
	p := b.newPlan()
	b.mu.Lock()
	for _, e := range appended {
		b.apply(e, p)
	}
	b.mu.Unlock()
	// Published: the events' place in every connection's order is fixed.
	// The deliverer wakes the connections while the next batch commits, so
	// a POST waits for its commit, not for thousands of wake-ups.
	b.plans <- p
	for i, req := range owners {
		req.reply <- result{event: appended[i]}
	}
}

// takePresenceChanges turns the users whose first connection opened or last
// one closed since the last batch into presence events. A user who came and
// went within one batch publishes nothing.
func (b *Broker) takePresenceChanges(now time.Time) []chat.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	var events []chat.Event
	for user := range b.dirty {
		online := len(b.conns[user]) > 0
		if online != b.online[user] {
			status := chat.Offline
			if online {
				status = chat.Online
			}
			events = append(events, chat.Event{Kind: chat.KindPresence, User: user, Status: status, TS: now})
		}
		delete(b.dirty, user)
	}
	return events
}

// requeue marks the presence changes and counts that failed to commit as
// pending again so that a later batch retries them.
func (b *Broker) requeue(events []chat.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range events {
		switch e.Kind {
		case chat.KindPresence:
			b.dirty[e.User] = struct{}{}
		case chat.KindMembers:
			b.recounts[e.Room] = struct{}{}
		}
	}
}

// markDirty notes a possible presence change; the caller holds b.mu.
func (b *Broker) markDirty(user string) {
	b.dirty[user] = struct{}{}
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// apply updates the routing state for a committed event and plans its
// delivery; the caller holds b.mu. In a large room a join or leave reaches
// only the user's own connections and the room gets a members event later.
func (b *Broker) apply(e chat.Event, p *plan) {
	b.head = e.ID
	switch e.Kind {
	case chat.KindJoin:
		b.addMember(e.User, e.Room)
		b.planRoomNotice(e, p)
	case chat.KindLeave:
		b.planRoomNotice(e, p)
		b.removeMember(e.User, e.Room)
	case chat.KindMessage, chat.KindMembers:
		p.addRoom(b, e.Room)
	case chat.KindPrivate:
		p.addUser(b, e.From)
		if e.To != e.From {
			p.addUser(b, e.To)
		}
	case chat.KindPresence:
		if e.Status == chat.Online {
			b.online[e.User] = true
		} else {
			delete(b.online, e.User)
		}
		for room := range b.userRooms[e.User] {
			if b.isLarge(room) {
				b.recounts[room] = struct{}{}
			}
		}
		p.addUsers(b, b.peers(e.User))
	}
	p.seal(eventFrame(e), e.ID)
}

func (b *Broker) planRoomNotice(e chat.Event, p *plan) {
	if b.isLarge(e.Room) {
		b.recounts[e.Room] = struct{}{}
		p.addUser(b, e.User)
		return
	}
	p.addRoom(b, e.Room)
}

// peers is user and everyone who shares a room with them that is not large.
func (b *Broker) peers(user string) map[string]struct{} {
	out := map[string]struct{}{user: {}}
	for room := range b.userRooms[user] {
		if b.isLarge(room) {
			continue
		}
		for member := range b.rooms[room] {
			out[member] = struct{}{}
		}
	}
	return out
}

// visible reports whether live delivery would have sent a logged event to
// user, for the parts the log's own filter cannot know: notices that a
// large room does not send. The caller holds b.mu.
func (b *Broker) visible(user string, e chat.Event) bool {
	switch e.Kind {
	case chat.KindJoin, chat.KindLeave:
		return e.User == user || !b.isLarge(e.Room)
	case chat.KindPresence:
		_, ok := b.peers(e.User)[user]
		return ok
	}
	return true
}
