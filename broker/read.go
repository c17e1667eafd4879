package broker

import (
	"context"

	"github.com/ssechat/ssechat/chat"
)

// MarkRead records that key's user has read up to id: room key.Room, of
// which they must be a member, or the conversation with key.With, a
// registered user's canonical name. It returns once the marker is durable
// and the read event is on its way to every stream of the user, on every
// instance, and to nobody else's. Errors: chat.EINVALID for an id past the
// log's head; for a room, chat.ENOTFOUND and chat.EFORBIDDEN as for a
// message.
//
// The marker moves to the newest message of the room (or conversation)
// at or below id, and only if that is past the marker (which in a room
// is never below the user's join); otherwise nothing changes and nothing
// is published. So the log grows only by one read event per message a
// user reads, however often they mark: a client that marks the newest id
// it has seen, its own read event's, say, or two tabs that echo each
// other's, cannot make events out of nothing, and marks need no rate
// limit of their own.
//
// A read event is a logged event like a message, not live state like
// presence: so it resumes with Last-Event-ID, and reaches the user's
// streams on other instances through the log, in order, like everything
// else they see.
func (b *Broker) MarkRead(ctx context.Context, key chat.ReadKey, id int64) error {
	// Read before the log's lock, which every instance's appends wait
	// for: finding the message may walk an index, and the events at or
	// below a committed id never change.
	target, head, err := b.store.ReadTarget(ctx, key, id)
	if err != nil {
		return err
	}
	if id > head {
		return chat.Errorf(chat.EINVALID, "id %d is past the newest event, %d", id, head)
	}
	// A mark that cannot move the marker (a tab echoing another's mark,
	// a client marking what it marked) is answered without the log's
	// lock, which every instance's writes wait for: markers only move
	// forward, so a floor read now can only be lower than the one the
	// append would judge by. Membership is checked first, as the append
	// would.
	if key.Room != "" {
		if err := b.CheckMember(ctx, key.User, key.Room); err != nil {
			return err
		}
	}
	floors, err := b.store.ReadFloors(ctx, []chat.ReadKey{key})
	if err != nil {
		return err
	}
	if target <= floors[0] {
		return nil
	}
	_, err = b.submit(ctx, chat.Event{Kind: chat.KindRead, User: key.User, Room: key.Room, To: key.With, Read: target})
	return err
}

func readKeyOf(e chat.Event) chat.ReadKey {
	return chat.ReadKey{User: e.User, Room: e.Room, With: e.To}
}

// readGate judges the read marks of one batch under the log's lock.
type readGate struct {
	// floors is how far each mark's user has read, as of the head the
	// lock gives: the store's marker, or their join of the room if later. A mark the
	// batch admits raises its floor, so a second, lower mark of the
	// same batch is a no-op.
	floors map[chat.ReadKey]int64
}

// readGate reads the floors of batch's marks: one query, and none for a
// batch without marks. It runs under the log's lock (so no other
// instance moves a marker meanwhile) and before validate takes b.mu,
// under which no I/O may happen.
func (b *Broker) readGate(ctx context.Context, batch []*request) (readGate, error) {
	var g readGate
	var keys []chat.ReadKey
	for _, req := range batch {
		if req.event.Kind != chat.KindRead {
			continue
		}
		if g.floors == nil {
			g.floors = make(map[chat.ReadKey]int64)
		}
		k := readKeyOf(req.event)
		if _, ok := g.floors[k]; !ok {
			g.floors[k] = 0
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return g, nil
	}
	floors, err := b.store.ReadFloors(ctx, keys)
	if err != nil {
		return g, err
	}
	for i, k := range keys {
		g.floors[k] = floors[i]
	}
	return g, nil
}

// admit judges one mark: an error for a mark that may not be made, false
// for one that would not move the marker (answered at once, not logged),
// true for one to log. Membership is the routing state's as of the head,
// with the joins and leaves earlier in the batch; the caller holds b.mu
// for reading.
func (g readGate) admit(b *Broker, o membershipOverlay, e chat.Event) (bool, error) {
	k := readKeyOf(e)
	joinedNow := false
	if k.Room != "" {
		joined, inBatch := o[[2]string{k.User, k.Room}]
		switch {
		case inBatch && !joined:
			return false, chat.Errorf(chat.EFORBIDDEN, "you are not a member of %q", k.Room)
		case !inBatch:
			if err := b.checkMemberLocked(k.User, k.Room); err != nil {
				return false, err
			}
		}
		joinedNow = inBatch
	}
	// A join in this batch comes after every message a mark can name.
	if joinedNow || e.Read <= g.floors[k] {
		return false, nil
	}
	g.floors[k] = e.Read
	return true, nil
}
