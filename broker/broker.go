// Package broker appends every chat event to the one ordered log and routes
// it to the SSE connections allowed to see it.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ssechat/ssechat/chat"
)

// Store is the durable event log the broker writes through.
type Store interface {
	// Append writes events in one transaction, in order, assigning strictly
	// increasing ids, and returns only once they are durable. Join and leave
	// events update the memberships in the same transaction.
	Append(ctx context.Context, events []chat.Event) ([]chat.Event, error)
	// Head is the id of the newest event ever appended (0 if none).
	Head(ctx context.Context) (int64, error)
	// Rooms returns every room and the current memberships.
	Rooms(ctx context.Context) ([]string, []chat.Membership, error)
	// EventsAfter returns, in id order, up to limit events in (after, upTo]
	// that user may see. A *chat.Error means the gap cannot be filled (the
	// events were pruned, say); its message tells the client why.
	EventsAfter(ctx context.Context, user string, after, upTo int64, limit int) ([]chat.Event, error)
}

// Config tunes a Broker; zero fields take the defaults below.
type Config struct {
	Heartbeat    time.Duration // comment line interval on every stream
	ReplayLimit  int           // most events a resume replays before it resets
	StreamBuffer int           // events queued behind a stuck write before the stream is cut off (see conn)
	WriteTimeout time.Duration // a peer that stops reading is cut off after this
	MaxBatch     int           // most events committed in one transaction
	// LargeRoom is the member count above which a room gets no per-user
	// join, leave and presence notices (each would reach every member:
	// O(members²) while a crowd arrives) but a members event with counts
	// at most once per MembersInterval.
	LargeRoom       int
	MembersInterval time.Duration
	// WriteRate is how many stream writes a second the fan-out makes
	// before it batches events into fewer, larger writes (see
	// runDeliverer).
	WriteRate int
	// WriteGap is the shortest time between two writes to one stream:
	// events that arrive sooner go out together in the next write (see
	// conn.waitGap). Negative: no gap.
	WriteGap time.Duration
}

func (c Config) withDefaults() Config {
	if c.Heartbeat <= 0 {
		c.Heartbeat = 15 * time.Second
	}
	if c.ReplayLimit <= 0 {
		c.ReplayLimit = 1000
	}
	if c.StreamBuffer <= 0 {
		c.StreamBuffer = 256
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 512
	}
	if c.LargeRoom <= 0 {
		c.LargeRoom = 100
	}
	if c.WriteRate <= 0 {
		c.WriteRate = defaultWriteRate()
	}
	if c.WriteGap == 0 {
		c.WriteGap = 10 * time.Millisecond
	}
	if c.MembersInterval <= 0 {
		c.MembersInterval = time.Second
	}
	return c
}

// Broker delivers each event to every open connection allowed to see it.
// Publishing returns only after the event is durable and its place in
// every connection's order is fixed; delivery is best-effort per
// connection, and a connection that falls behind is closed so that it
// resumes from its Last-Event-ID instead of stalling the others.
type Broker struct {
	store    Store
	log      *slog.Logger
	cfg      Config
	requests chan *request
	wake     chan struct{} // presence may have changed
	stop     context.CancelFunc
	done     sync.WaitGroup
	kicked   atomic.Int64

	// mu guards the routing state. The appender holds it while it applies
	// and fans out a committed batch, so a connection registered under it
	// sees every event above the head it read.
	mu        sync.RWMutex
	head      int64
	rooms     map[string]map[string]struct{} // room → members
	userRooms map[string]map[string]struct{} // user → rooms
	conns     map[string]map[*conn]struct{}  // user → open connections
	// roomConns caches a room's members' open connections for the
	// fan-out: walking a 10,000-member room's member and connection maps
	// for every message was 15 % of the server's CPU at 10,000 streams ×
	// 20 msg/s. An entry is dropped whenever the room's members or their
	// connections change, and rebuilt by the next message.
	roomConns map[string][]*conn
	online    map[string]bool     // presence as last published
	dirty     map[string]struct{} // users whose presence may have changed
	recounts  map[string]struct{} // large rooms whose counts changed
	closing   bool
	connsDone sync.WaitGroup

	plans     chan *plan // from the appender to the deliverer, in log order
	freePlans chan *plan
}

// New loads the routing state from store and starts the appender.
func New(ctx context.Context, store Store, log *slog.Logger, cfg Config) (*Broker, error) {
	head, err := store.Head(ctx)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	rooms, members, err := store.Rooms(ctx)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	b := &Broker{
		store:     store,
		log:       log,
		cfg:       cfg.withDefaults(),
		requests:  make(chan *request, 1024),
		wake:      make(chan struct{}, 1),
		head:      head,
		rooms:     make(map[string]map[string]struct{}, len(rooms)),
		userRooms: make(map[string]map[string]struct{}),
		conns:     make(map[string]map[*conn]struct{}),
		roomConns: make(map[string][]*conn),
		online:    make(map[string]bool),
		dirty:     make(map[string]struct{}),
		recounts:  make(map[string]struct{}),
		plans:     make(chan *plan, 16),
		freePlans: make(chan *plan, 17),
	}
	for _, r := range rooms {
		b.rooms[r] = make(map[string]struct{})
	}
	for _, m := range members {
		b.addMember(m.User, m.Room)
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	b.stop = stop
	b.done.Add(3)
	go b.runAppender(runCtx)
	go b.runDeliverer()
	go b.runHeartbeat(runCtx)
	return b, nil
}

// Kicked counts connections closed because they fell behind.
func (b *Broker) Kicked() int64 { return b.kicked.Load() }

func (b *Broker) addMember(user, room string) {
	delete(b.roomConns, room)
	if b.rooms[room] == nil {
		b.rooms[room] = make(map[string]struct{})
	}
	b.rooms[room][user] = struct{}{}
	if b.userRooms[user] == nil {
		b.userRooms[user] = make(map[string]struct{})
	}
	b.userRooms[user][room] = struct{}{}
}

// connsOfRoom returns the open connections of room's members; the caller
// holds b.mu for writing and must not modify the result.
func (b *Broker) connsOfRoom(room string) []*conn {
	if cached, ok := b.roomConns[room]; ok {
		return cached
	}
	var out []*conn
	for user := range b.rooms[room] {
		for c := range b.conns[user] {
			out = append(out, c)
		}
	}
	b.roomConns[room] = out
	return out
}

// connsChanged drops the cached connections of user's rooms.
func (b *Broker) connsChanged(user string) {
	for room := range b.userRooms[user] {
		delete(b.roomConns, room)
	}
}

func (b *Broker) isLarge(room string) bool { return len(b.rooms[room]) > b.cfg.LargeRoom }

func (b *Broker) removeMember(user, room string) {
	delete(b.roomConns, room)
	delete(b.rooms[room], user)
	delete(b.userRooms[user], room)
	if len(b.userRooms[user]) == 0 {
		delete(b.userRooms, user)
	}
}

// Member is a room member as clients see it.
type Member struct {
	Username string `json:"username"`
	Online   bool   `json:"online"`
}

// RoomInfo is a room and how many members it has.
type RoomInfo struct {
	Room    string `json:"room"`
	Members int    `json:"members"`
}

// Rooms lists every room with its member count, by name.
func (b *Broker) Rooms() []RoomInfo {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]RoomInfo, 0, len(b.rooms))
	for r, m := range b.rooms {
		out = append(out, RoomInfo{Room: r, Members: len(m)})
	}
	slices.SortFunc(out, func(a, b RoomInfo) int { return compareStrings(a.Room, b.Room) })
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Members lists a room's members by name with their online flag, or
// chat.ENOTFOUND for a room nobody ever joined.
func (b *Broker) Members(room string) ([]Member, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.membersLocked(room)
}

func (b *Broker) membersLocked(room string) ([]Member, error) {
	members, ok := b.rooms[room]
	if !ok {
		return nil, chat.Errorf(chat.ENOTFOUND, "no room %q", room)
	}
	out := make([]Member, 0, len(members))
	for u := range members {
		out = append(out, Member{Username: u, Online: len(b.conns[u]) > 0})
	}
	slices.SortFunc(out, func(a, b Member) int { return compareStrings(a.Username, b.Username) })
	return out, nil
}

// RoomsOf lists the rooms user is a member of, by name.
func (b *Broker) RoomsOf(user string) []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]string, 0, len(b.userRooms[user]))
	for r := range b.userRooms[user] {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// CheckMember returns nil if user is a member of room, chat.ENOTFOUND for
// an unknown room and chat.EFORBIDDEN otherwise.
func (b *Broker) CheckMember(user, room string) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.checkMemberLocked(user, room)
}

func (b *Broker) checkMemberLocked(user, room string) error {
	members, ok := b.rooms[room]
	if !ok {
		return chat.Errorf(chat.ENOTFOUND, "no room %q", room)
	}
	if _, ok := members[user]; !ok {
		return chat.Errorf(chat.EFORBIDDEN, "you are not a member of %q", room)
	}
	return nil
}

// RoomState is a room as a joining user first sees it.
type RoomState struct {
	Room  string `json:"room"`
	Count int    `json:"count"`
	// Members is left empty for a large room: sending every member to
	// every newcomer is what makes a crowd's arrival O(members²).
	Members []Member `json:"members"`
}

// Join makes user a member of room (creating it) and returns the room.
// Joining again changes nothing and publishes nothing.
func (b *Broker) Join(ctx context.Context, user, room string) (RoomState, error) {
	if _, err := b.submit(ctx, chat.Event{Kind: chat.KindJoin, Room: room, User: user}); err != nil {
		return RoomState{}, err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	state := RoomState{Room: room, Count: len(b.rooms[room]), Members: []Member{}}
	if !b.isLarge(room) {
		state.Members, _ = b.membersLocked(room)
	}
	return state, nil
}

// Leave ends user's membership of room; leaving a room one is not in is a
// no-op.
func (b *Broker) Leave(ctx context.Context, user, room string) error {
	_, err := b.submit(ctx, chat.Event{Kind: chat.KindLeave, Room: room, User: user})
	return err
}

// PostRoom publishes a room message from user, a member of room.
func (b *Broker) PostRoom(ctx context.Context, user, room, text string) (chat.Event, error) {
	return b.submit(ctx, chat.Event{Kind: chat.KindMessage, Room: room, From: user, Text: text})
}

// PostPrivate publishes a private message; to must be a registered user's
// canonical name.
func (b *Broker) PostPrivate(ctx context.Context, from, to, text string) (chat.Event, error) {
	return b.submit(ctx, chat.Event{Kind: chat.KindPrivate, From: from, To: to, Text: text})
}

// errShuttingDown answers writes that arrive after Close.
var errShuttingDown = chat.Errorf(chat.EUNAVAILABLE, "server is shutting down")

// Close stops the appender after it has answered every queued write. Call
// it after Shutdown and after the HTTP server stopped taking requests.
func (b *Broker) Close() {
	b.stop()
	b.done.Wait()
}

func isCanceled(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
