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
	b.intake.RLock()
	if b.intakeClosed {
		b.intake.RUnlock()
		return chat.Event{}, errShuttingDown
	}
	select {
	case b.requests <- req:
	case <-b.stopping:
		b.intake.RUnlock()
		return chat.Event{}, errShuttingDown
	case <-ctx.Done():
		b.intake.RUnlock()
		return chat.Event{}, ctx.Err()
	}
	b.intake.RUnlock()
	// Once queued the write will be answered: waiting for that answer even
	// if the client went away keeps "acknowledged" and "durable" the same.
	res := <-req.reply
	return res.event, res.err
}

// runAppender is this instance's only writer of the event log. It takes
// every write queued so far as one batch and appends it in one
// transaction (one fsync, and one turn of the log's lock, for many
// writes), then applies the events and answers the writers.
func (b *Broker) runAppender(ctx context.Context) {
	batch := make([]*request, 0, b.cfg.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case req := <-b.requests:
			batch = append(batch, req)
		case <-ctx.Done():
			b.drainOnStop()
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
		b.appendBatch(ctx, batch)
	}
}

// drainOnStop answers every write queued, and every one that comes later,
// with errShuttingDown: a write must never wait for an appender that is
// gone.
func (b *Broker) drainOnStop() {
	close(b.stopping) // unblocks writers waiting for room in the queue
	b.intake.Lock()   // waits for them to leave
	b.intakeClosed = true
	b.intake.Unlock()
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

// appendBatch appends the writes that are valid, answers the rest, and
// answers the appended ones once their events are applied.
//
// Validity depends on memberships, which other instances change too. So
// it is judged inside the append, under the log's lock: the broker first
// applies whatever the log holds up to the head the lock gives (see
// catchUp), and no other instance can append until this batch commits.
func (b *Broker) appendBatch(ctx context.Context, batch []*request) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	owners := batch // until validated: the writes an error answers
	prepare := func(head int64, newer []chat.Event) ([]chat.Event, error) {
		if err := b.catchUpWith(ctx, newer, head); err != nil {
			return nil, err
		}
		reads, err := b.readGate(ctx, batch, head)
		if err != nil {
			return nil, err
		}
		var events []chat.Event
		owners, events = b.validate(batch, now, reads)
		return events, nil
	}
	// A batch once begun is committed even if the broker is stopping: its
	// writers are waiting for the answer. Without cancellation the SQLite
	// driver also skips the goroutine it starts per statement to watch
	// the context.
	appended, err := b.store.Append(context.WithoutCancel(ctx), b.appliedHead(), prepare)
	if err != nil {
		b.log.Error("append events", "count", len(owners), "err", err)
		for _, req := range owners {
			req.reply <- result{err: err}
		}
		return
	}
	if len(appended) > 0 {
		if err := b.applyAppended(ctx, appended); err != nil {
			// Durable but not applied here: the tailer applies them once
			// the log is readable again. The writers' events are safe.
			b.log.Error("apply appended events", "err", err)
		}
		b.announce(appended[len(appended)-1].ID)
	}
	for i, req := range owners {
		req.reply <- result{event: appended[i]}
	}
}

// validate answers the writes that are invalid or change nothing and
// returns the others with their events. The routing state is the log's
// as of the head the append holds; reads judges the read marks.
func (b *Broker) validate(batch []*request, now time.Time, reads readGate) ([]*request, []chat.Event) {
	owners := make([]*request, 0, len(batch))
	events := make([]chat.Event, 0, len(batch))
	overlay := membershipOverlay{}
	b.mu.RLock()
	defer b.mu.RUnlock()
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
		case e.Kind == chat.KindRead:
			if moves, err := reads.admit(b, overlay, e); !moves {
				req.reply <- result{err: err}
				continue
			}
		case e.Kind == chat.KindJoin, e.Kind == chat.KindLeave:
			overlay[[2]string{e.User, e.Room}] = e.Kind == chat.KindJoin
		}
		events = append(events, e)
		owners = append(owners, req)
	}
	return owners, events
}

// tailChunk is how many events one read of the log's tail returns.
const tailChunk = 1000

// applyAppended applies this instance's own appended events, after
// whatever other instances appended before them.
func (b *Broker) applyAppended(ctx context.Context, events []chat.Event) error {
	b.seq.Lock()
	defer b.seq.Unlock()
	if err := b.catchUpLocked(ctx, events[0].ID-1); err != nil {
		return err
	}
	b.applyLocked(events)
	return nil
}

// catchUpWith applies newer, events read with the log's lock, then the
// log up to at least upTo.
func (b *Broker) catchUpWith(ctx context.Context, newer []chat.Event, upTo int64) error {
	b.seq.Lock()
	defer b.seq.Unlock()
	if len(newer) > 0 && newer[0].ID <= b.head+1 {
		b.applyLocked(newer)
	}
	return b.catchUpLocked(ctx, upTo)
}

// catchUp applies the log up to at least upTo.
func (b *Broker) catchUp(ctx context.Context, upTo int64) error {
	b.seq.Lock()
	defer b.seq.Unlock()
	return b.catchUpLocked(ctx, upTo)
}

// catchUpLocked reads the log above the applied head until it reaches
// upTo, and applies it; the caller holds b.seq.
//
// Why reading "the events above the head" never skips one: ids are
// contiguous and become visible in id order (Store.Append), so if the log
// shows id N, every id below N is there too. A notice lost between the
// instances, or arriving out of order, delays an event, never loses it:
// the next notice, append or poll reads everything from the head on.
func (b *Broker) catchUpLocked(ctx context.Context, upTo int64) error {
	for b.head < upTo {
		events, err := b.store.Tail(ctx, b.head, tailChunk)
		if err != nil {
			return err
		}
		if len(events) == 0 {
			return nil
		}
		if events[0].ID != b.head+1 {
			// Retention pruned events this instance never applied: it
			// was far behind for longer than the history is kept.
			return b.reloadLocked(ctx, events[0].ID-1)
		}
		b.applyLocked(events)
	}
	return nil
}

// reloadLocked replaces the routing state with the log's latest and cuts
// off every connection, which resumes and is told to reset: their streams
// would otherwise have a gap. The caller holds b.seq.
func (b *Broker) reloadLocked(ctx context.Context, missingThrough int64) error {
	b.log.Error("events were pruned before this instance applied them; reloading", "head", b.head, "pruned_through", missingThrough)
	snap, err := b.store.Snapshot(ctx)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.load(snap)
	for user := range b.online {
		for room := range b.userRooms[user] {
			b.roomOnline[room]++
		}
	}
	var all []*conn
	for _, set := range b.conns {
		for c := range set {
			all = append(all, c)
		}
	}
	b.mu.Unlock()
	for _, c := range all {
		c.cutOff()
	}
	return nil
}

// applyLocked applies events above the head, in order, and hands their
// plan to the deliverer; the caller holds b.seq.
func (b *Broker) applyLocked(events []chat.Event) {
	p := b.newPlan()
	b.mu.Lock()
	for _, e := range events {
		if e.ID != b.head+1 {
			continue // applied already: the tailer read our own commit first
		}
		b.apply(e, p)
	}
	b.mu.Unlock()
	b.handOver(p)
}

// handOver gives a plan to the deliverer; the caller holds b.seq. After
// Close there is nobody to deliver to.
func (b *Broker) handOver(p *plan) {
	if b.stopped {
		return
	}
	// Published: the events' place in every connection's order is fixed.
	// The deliverer wakes the connections while the next batch commits, so
	// a POST waits for its commit, not for thousands of wake-ups.
	b.plans <- p
}

// sync applies what the log holds now. Reads that must reflect writes on
// other instances (membership checks) call it; on error they go on with
// what this instance knows.
func (b *Broker) sync(ctx context.Context) {
	head, err := b.store.Head(ctx)
	if err != nil {
		b.log.Debug("read the log's head", "err", err)
		return
	}
	if b.appliedHead() >= head {
		return
	}
	if err := b.catchUp(ctx, head); err != nil {
		b.log.Debug("catch up with the log", "err", err)
	}
}

func (b *Broker) appliedHead() int64 {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.head
}

// LogGrew is the cluster's notice that the log holds events up to head.
func (b *Broker) LogGrew(head int64) {
	for {
		old := b.noticed.Load()
		if head <= old || b.noticed.CompareAndSwap(old, head) {
			break
		}
	}
	select {
	case b.tailWake <- struct{}{}:
	default:
	}
}

// runTailer applies what other instances append: at once when the cluster
// says the log grew, and every PollInterval in any case, because a notice
// may be lost (Redis restarted, say) and the log is the truth.
func (b *Broker) runTailer(ctx context.Context) {
	poll := time.NewTicker(b.cfg.PollInterval)
	defer poll.Stop()
	failing := false
	for {
		var target int64
		select {
		case <-ctx.Done():
			return
		case <-b.tailWake:
			target = b.noticed.Load()
		case <-poll.C:
			head, err := b.store.Head(ctx)
			if err != nil {
				failing = b.logFailure(failing, "poll the log", err)
				continue
			}
			target = head
		}
		if target <= b.appliedHead() {
			continue
		}
		err := b.catchUp(ctx, target)
		if err != nil && ctx.Err() != nil {
			return
		}
		failing = b.logFailure(failing, "catch up with the log", err)
	}
}

// logFailure logs the first of a run of failures and the recovery after
// it, not every retry, and reports whether err is a failure.
func (b *Broker) logFailure(failing bool, what string, err error) bool {
	switch {
	case err != nil && !failing:
		b.log.Warn(what+" failed; retrying", "err", err)
	case err == nil && failing:
		b.log.Info(what + " works again")
	}
	return err != nil
}

// announce tells the other instances, soon and without holding up the
// writers, that the log grew to head.
func (b *Broker) announce(head int64) {
	b.announced.Store(head)
	select {
	case b.announceWake <- struct{}{}:
	default:
	}
}

// runAnnouncer sends the newest head to the cluster. Notices that pile up
// while one is sent collapse into one.
func (b *Broker) runAnnouncer(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.announceWake:
			b.cluster.Announce(ctx, b.announced.Load())
		}
	}
}

// apply updates the routing state for a logged event and plans its
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
	case chat.KindMessage:
		p.addRoom(b, e.Room)
	case chat.KindPrivate:
		p.addUser(b, e.From)
		if e.To != e.From {
			p.addUser(b, e.To)
		}
	case chat.KindRead:
		p.addUser(b, e.User) // nobody else's business
	default:
		// Presence and members events in a log written by an older
		// version: live state then, never delivered again.
		return
	}
	b.stats.countEvent(e.Kind)
	p.seal(eventFrame(e), e.ID, false)
	if e.Kind == chat.KindJoin && !b.isLarge(e.Room) {
		b.planJoinPresence(e, p)
	}
}

// planJoinPresence tells a small room that its new member is online, and
// the new member who in the room is: presence notices reach only those
// who share a room, so neither side had heard the other's. It also mends
// an order the cluster allows: a user's online notice can reach an
// instance before their join does. The caller holds b.mu.
func (b *Broker) planJoinPresence(e chat.Event, p *plan) {
	if b.online[e.User] {
		p.addRoom(b, e.Room)
		p.seal(presenceFrame(e.User, true, e.ID, e.TS), e.ID, true)
	}
	for member := range b.rooms[e.Room] {
		if member != e.User && b.online[member] {
			p.addUser(b, e.User)
			p.seal(presenceFrame(member, true, e.ID, e.TS), e.ID, true)
		}
	}
}

func (b *Broker) planRoomNotice(e chat.Event, p *plan) {
	if b.isLarge(e.Room) {
		b.markRecount(e.Room)
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
// user, for the part the log's own filter cannot know: the join and leave
// notices that a large room does not send. The caller holds b.mu.
func (b *Broker) visible(user string, e chat.Event) bool {
	switch e.Kind {
	case chat.KindJoin, chat.KindLeave:
		return e.User == user || !b.isLarge(e.Room)
	}
	return true
}
