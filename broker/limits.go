package broker

// What the HTTP edge's abuse limits read (see handlers/limits.go): counts
// under a read lock, no I/O.

// StreamsOf counts user's streams open on this instance.
func (b *Broker) StreamsOf(user string) int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.conns[user])
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
