package broker

import (
	"context"

	"github.com/ssechat/ssechat/chat"
)

// MarkRead records that key's user has read up to id: room key.Room, of
// which they must be a member, or the conversation with key.With, a
// registered user's canonical name. It returns once the marker is durable
// and the read event is on its way to every stream of the user, on every
// instance, and to nobody else's. A mark that would not move the marker
// forward (an id at or below it, or, in a room, below the user's join)
// changes nothing and publishes nothing: the log grows only when a marker
// does. Errors: for a room, chat.ENOTFOUND and chat.EFORBIDDEN as for a
// message; chat.EINVALID for an id past the log's head.
//
// A read event is a logged event like a message, not live state like
// presence: so it resumes with Last-Event-ID, and reaches the user's
// streams on other instances through the log, in order, like everything
// else they see.
func (b *Broker) MarkRead(ctx context.Context, key chat.ReadKey, id int64) error {
	_, err := b.submit(ctx, chat.Event{Kind: chat.KindRead, User: key.User, Room: key.Room, To: key.With, Read: id})
	return err
}

func readKeyOf(e chat.Event) chat.ReadKey {
	return chat.ReadKey{User: e.User, Room: e.Room, With: e.To}
}

// readGate judges the read marks of one batch under the log's lock.
type readGate struct {
	head int64
	// floors is how far each mark's user has read as of head: the
	// store's marker, or their join of the room if later. A mark the
	// batch admits raises its floor, so a second, lower mark of the
	// same batch is a no-op.
	floors map[chat.ReadKey]int64
}

// readGate reads the floors of batch's marks: one query, and none for a
// batch without marks. It runs under the log's lock (so no other
// instance moves a marker meanwhile) and before validate takes b.mu,
// under which no I/O may happen.
func (b *Broker) readGate(ctx context.Context, batch []*request, head int64) (readGate, error) {
	g := readGate{head: head}
	var keys []chat.ReadKey
	for _, req := range batch {
		if req.event.Kind != chat.KindRead {
			continue
		}
		if g.floors == nil {
			g.floors = make(map[chat.ReadKey]int64)
		}
		if k := readKeyOf(req.event); !containsKey(g.floors, k) {
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

func containsKey(m map[chat.ReadKey]int64, k chat.ReadKey) bool {
	_, ok := m[k]
	return ok
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
	switch {
	case e.Read > g.head:
		return false, chat.Errorf(chat.EINVALID, "id %d is past the newest event, %d", e.Read, g.head)
	case joinedNow, e.Read <= g.floors[k]:
		// A join in this batch comes after every id up to the head.
		return false, nil
	}
	g.floors[k] = e.Read
	return true, nil
}
