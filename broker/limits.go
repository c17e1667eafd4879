package broker

import "context"

// What the HTTP edge's abuse limits read (see handlers/limits.go): counts
// under a read lock, and what the other instances reported.

// StreamsOf counts user's open streams: this instance's, and those the
// other instances last reported to the cluster. When the cluster cannot
// tell (Redis is down), only this instance's: the cap fails open to one
// per instance rather than refusing streams.
func (b *Broker) StreamsOf(ctx context.Context, user string) int {
	b.mu.RLock()
	n := len(b.conns[user])
	b.mu.RUnlock()
	if elsewhere, err := b.cluster.StreamsElsewhere(ctx, user); err == nil {
		n += elsewhere
	}
	return n
}

// RoomExists reports whether anyone ever joined room, as of the part of
// the log this instance applied: a room created on another instance a
// moment ago may not exist here yet.
func (b *Broker) RoomExists(room string) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	_, ok := b.rooms[room]
	return ok
}
