package broker

import (
	"context"
	"time"

	"github.com/ssechat/ssechat/chat"
)

// Presence and member counts are live state, not log events: a reconnect
// costs no durable write, and a resumed stream learns who is online from
// a snapshot after `ready` instead of from replayed notices that today's
// rooms would judge (see conn.goLive). Their frames carry the stream's
// position as id, so that the browser's Last-Event-ID stays valid.
//
// The flow: a user's local stream opening or closing marks them dirty;
// runPresence tells the cluster how many this instance now holds (the
// stream cap counts them across instances); the cluster tells every
// instance, this one included, when the user came online or went offline
// anywhere (PresenceChanged); each instance then tells its own streams.

// markDirty notes that one of user's local streams opened or closed; the
// caller holds b.mu.
func (b *Broker) markDirty(user string) {
	b.dirty[user] = struct{}{}
	select {
	case b.presenceWake <- struct{}{}:
	default:
	}
}

// presenceRetry is how soon a failed report to the cluster is retried.
const presenceRetry = time.Second

// runPresence reports to the cluster how many streams of each user this
// instance holds. It owns told, what the cluster was last told. Changes
// that come faster than the cluster answers are reported as their sum.
func (b *Broker) runPresence(ctx context.Context) {
	told := make(map[string]int)
	retry := time.NewTicker(presenceRetry)
	defer retry.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.presenceWake:
		case <-retry.C:
		}
		b.mu.Lock()
		changed := make(map[string]int, len(b.dirty))
		for user := range b.dirty {
			if n := len(b.conns[user]); n != told[user] {
				changed[user] = n
			}
		}
		clear(b.dirty)
		b.mu.Unlock()
		var err error
		for user, n := range changed {
			if err == nil {
				if err = b.cluster.SetLocal(ctx, user, n); err == nil {
					if n > 0 {
						told[user] = n
					} else {
						delete(told, user)
					}
					continue
				}
			}
			// Not reported: try again at the next retry.
			b.mu.Lock()
			b.dirty[user] = struct{}{}
			b.mu.Unlock()
		}
		if ctx.Err() != nil {
			return // shutting down: the cluster's goodbye takes our users offline
		}
		failing = b.logFailure(failing, "report presence", err)
	}
}

// PresenceChanged is the cluster's word that user came online or went
// offline anywhere: it tells this instance's streams of user's peers.
func (b *Broker) PresenceChanged(user string, online bool) {
	b.seq.Lock()
	defer b.seq.Unlock()
	p := b.newPlan()
	b.mu.Lock()
	b.setUserOnline(user, online, p, time.Now())
	b.mu.Unlock()
	b.handOver(p)
}

// setUserOnline records user's presence and plans the notice to their
// peers and the recount of their large rooms; the caller holds b.seq and
// b.mu.
func (b *Broker) setUserOnline(user string, online bool, p *plan, now time.Time) {
	if b.online[user] == online {
		return
	}
	delta := -1
	if online {
		b.online[user] = true
		delta = 1
	} else {
		delete(b.online, user)
	}
	for room := range b.userRooms[user] {
		b.roomOnline[room] += delta
		if b.isLarge(room) {
			b.markRecount(room)
		}
	}
	p.addUsers(b, b.peers(user))
	b.stats.countEvent(chat.KindPresence)
	p.seal(presenceFrame(user, online, b.head, now), b.head, true)
}

// Resync is the cluster's word that news may have been lost: it reloads
// who is online, tells the streams what changed meanwhile, and reads the
// log for events whose notice was lost.
//
// Users missing from the reloaded list are announced offline only if they
// are still missing resyncGrace later: after Redis restarts empty, every
// instance registers its users again at its next heartbeat, and without
// the grace every user of the other instances would flicker offline.
func (b *Broker) Resync() {
	b.LogGrew(b.appliedHead() + 1)
	missing := b.reloadOnline(nil)
	if len(missing) > 0 {
		time.AfterFunc(resyncGrace, func() { b.reloadOnline(missing) })
	}
}

// resyncGrace is longer than the cluster's heartbeat interval.
const resyncGrace = 7 * time.Second

// reloadOnline marks online every user the cluster lists, and offline
// those of offline (all users if nil) that it does not. It returns the
// users it left online although the cluster did not list them.
func (b *Broker) reloadOnline(offline map[string]bool) map[string]bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	online, err := b.cluster.Online(ctx)
	if err != nil {
		b.log.Warn("reload presence", "err", err)
		return nil
	}
	b.seq.Lock()
	defer b.seq.Unlock()
	p := b.newPlan()
	now := time.Now()
	b.mu.Lock()
	listed := make(map[string]bool, len(online))
	for _, u := range online {
		listed[u] = true
		b.setUserOnline(u, true, p, now)
	}
	missing := make(map[string]bool)
	for u := range b.online {
		switch {
		case listed[u]:
		case offline == nil:
			missing[u] = true
		case offline[u]:
			b.setUserOnline(u, false, p, now)
		}
	}
	b.mu.Unlock()
	b.handOver(p)
	return missing
}

// setOnline sets the online users at start, before any stream opens.
func (b *Broker) setOnline(users []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, u := range users {
		b.online[u] = true
		for room := range b.userRooms[u] {
			b.roomOnline[room]++
		}
	}
}

// markRecount notes that a large room's counts changed; the caller holds
// b.mu for writing.
func (b *Broker) markRecount(room string) { b.recounts[room] = struct{}{} }

// runCounts sends each large room whose counts changed a members event,
// at most once per MembersInterval: while a crowd arrives, one event a
// second instead of one per arrival.
func (b *Broker) runCounts(ctx context.Context) {
	tick := time.NewTicker(b.cfg.MembersInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			b.sendCounts(now)
		}
	}
}

func (b *Broker) sendCounts(now time.Time) {
	b.seq.Lock()
	defer b.seq.Unlock()
	b.mu.Lock()
	if len(b.recounts) == 0 {
		b.mu.Unlock()
		return
	}
	p := b.newPlan()
	for room := range b.recounts {
		p.addRoom(b, room)
		b.stats.countEvent(chat.KindMembers)
		p.seal(membersFrame(room, len(b.rooms[room]), b.roomOnline[room], b.head, now), b.head, true)
	}
	clear(b.recounts)
	b.mu.Unlock()
	b.handOver(p)
}

// liveSnapshot is what a stream is told when it goes live, at its
// position: one presence event per online peer and one members event per
// large room of user. The caller holds b.mu.
func (b *Broker) liveSnapshot(user string, position int64) [][]byte {
	now := time.Now()
	var frames [][]byte
	for peer := range b.peers(user) {
		if b.online[peer] {
			frames = append(frames, presenceFrame(peer, true, position, now))
		}
	}
	for room := range b.userRooms[user] {
		if b.isLarge(room) {
			frames = append(frames, membersFrame(room, len(b.rooms[room]), b.roomOnline[room], position, now))
		}
	}
	return frames
}

// EndSession closes every stream of the session whose key is key (a
// logout, on any instance).
func (b *Broker) EndSession(key string) {
	var ended []*conn
	b.mu.RLock()
	for _, set := range b.conns {
		for c := range set {
			if c.session == key {
				ended = append(ended, c)
			}
		}
	}
	b.mu.RUnlock()
	for _, c := range ended {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		c.cutOff()
	}
}

// Sessions lists the keys of the sessions with open streams here.
func (b *Broker) Sessions() []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	seen := make(map[string]struct{})
	var out []string
	for _, set := range b.conns {
		for c := range set {
			if _, ok := seen[c.session]; !ok && c.session != "" {
				seen[c.session] = struct{}{}
				out = append(out, c.session)
			}
		}
	}
	return out
}

// presenceFrame is a live presence notice at a stream position.
func presenceFrame(user string, online bool, position int64, now time.Time) []byte {
	status := chat.Offline
	if online {
		status = chat.Online
	}
	return eventFrame(chat.Event{ID: position, Kind: chat.KindPresence, User: user, Status: status, TS: now})
}

// membersFrame is a large room's live counts at a stream position.
func membersFrame(room string, members, online int, position int64, now time.Time) []byte {
	return eventFrame(chat.Event{ID: position, Kind: chat.KindMembers, Room: room,
		Members: members, Online: online, TS: now.UTC().Truncate(time.Millisecond)})
}
