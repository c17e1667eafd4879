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

// Store is the durable event log the broker writes through and tails.
// Several brokers (one per instance) may share one log.
type Store interface {
	// AppendOnce runs one appending transaction: it takes the log's lock,
	// so that the appends of every instance are serialised, calls prepare
	// once with the log's head (every event up to it is committed and
	// readable by Tail), the events above after up to the head (the first
	// ones, maybe not all: prepare reads the rest) and those of keys the
	// store holds with their events (done), and writes the events prepare
	// returns with the ids that follow the head, in order, in one durable
	// commit. Join and leave events update the memberships, read events
	// move their user's read marker (never backwards), and the keys
	// prepare returns beside the events (once[i] is events[i]'s, if
	// given) are stored, in the same transaction. An error from prepare
	// aborts the append and is returned as is. Ids are contiguous and
	// become visible in id order: a reader that sees id N sees every id
	// below it.
	AppendOnce(ctx context.Context, after int64, keys []chat.Once, prepare func(head int64, newer []chat.Event, done []chat.KeyedEvent) (events []chat.Event, once []chat.Once, err error)) ([]chat.Event, error)
	// Tail returns, in id order, up to limit events above after, whoever
	// appended them.
	Tail(ctx context.Context, after int64, limit int) ([]chat.Event, error)
	// Head is the id of the newest event ever appended (0 if none).
	Head(ctx context.Context) (int64, error)
	// Snapshot returns the head and the rooms and memberships as of it.
	Snapshot(ctx context.Context) (chat.Snapshot, error)
	// EventsAfter returns, in id order, up to limit logged events in
	// (after, upTo] that user may see. A *chat.Error means the gap cannot
	// be filled (the events were pruned, say); its message tells the
	// client why.
	EventsAfter(ctx context.Context, user string, after, upTo int64, limit int) ([]chat.Event, error)
	// ReadTarget returns the log's head and the newest message at or
	// below id of key's room or conversation (0 if none), read together.
	ReadTarget(ctx context.Context, key chat.ReadKey, id int64) (target, head int64, err error)
	// ReadFloors returns, for each key, how far its user has read: their
	// marker, or for a room the join of their current membership if
	// later; 0 if neither. Read events move the markers in their append.
	ReadFloors(ctx context.Context, keys []chat.ReadKey) ([]int64, error)
	// KeyedEvents returns the keys of keys the store holds, with their
	// events, read outside the log's lock: what AppendOnce's prepare is
	// given as done, as of some moment before the call returns.
	KeyedEvents(ctx context.Context, keys []chat.Once) ([]chat.KeyedEvent, error)
}

// Cluster carries the news between the instances that share the log (see
// package cluster). Its notices may be lost: the broker polls the log, so
// a lost notice only delays events.
type Cluster interface {
	// Announce tells the other instances that the log grew to head.
	Announce(ctx context.Context, head int64)
	// SetLocal records how many streams of user this instance holds (0:
	// none); the cluster answers with PresenceChanged on every instance
	// when that makes the user come online or go offline anywhere. An
	// error (the cluster is unreachable) is retried later.
	SetLocal(ctx context.Context, user string, streams int) error
	// Online lists the users online on any instance.
	Online(ctx context.Context) ([]string, error)
	// StreamsElsewhere counts the streams of user that the other
	// instances last said they hold (SetLocal), for the stream cap.
	StreamsElsewhere(ctx context.Context, user string) (int, error)
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
	// PollInterval is how often the broker asks the log for events that
	// other instances appended and whose notice it missed.
	PollInterval time.Duration
	Metrics      Metrics // receives timings; nil: none (see metrics.go)
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
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	return c
}

// Broker delivers each event to every open connection allowed to see it.
// Publishing returns only after the event is durable and its place in
// every connection's order is fixed; delivery is best-effort per
// connection, and a connection that falls behind is closed so that it
// resumes from its Last-Event-ID instead of stalling the others.
//
// There is one code path for one instance and for many: the broker applies
// the log in id order, its own appends and those of other instances alike
// (see catchUpLocked), and a connection's stream is that log filtered to
// what its user may see. Presence and large rooms' member counts are live
// state beside the log: never stored, never replayed.
type Broker struct {
	store   Store
	cluster Cluster
	log     *slog.Logger
	cfg     Config

	requests chan *request
	// intake guards the hand-over of writes to the appender: once it has
	// stopped, intakeClosed answers them at once.
	intake       sync.RWMutex
	intakeClosed bool
	stopping     chan struct{} // closed when the appender stops
	stop         context.CancelFunc
	workers      sync.WaitGroup // every goroutine that plans deliveries
	delivers     sync.WaitGroup // the deliverer
	kicked       atomic.Int64
	stats        counters // read by Stats (metrics.go)

	// seq orders everything that plans deliveries (applying the log,
	// presence and member counts) and the hand-over of those plans to the
	// deliverer: a connection gets frames in the order they were planned,
	// so the ids on a stream never go down.
	seq     sync.Mutex
	stopped bool // under seq: plans is closed

	// mu guards the routing state. Applying the log holds it for writing,
	// so a connection registered under it sees every event above the head
	// it read. No I/O happens under it.
	mu        sync.RWMutex
	head      int64                          // id of the newest applied event; written under seq and mu
	rooms     map[string]map[string]struct{} // room → members
	userRooms map[string]map[string]struct{} // user → rooms
	conns     map[string]map[*conn]struct{}  // user → open connections here
	// roomConns caches a room's members' open connections for the
	// fan-out: walking a 10,000-member room's member and connection maps
	// for every message was 15 % of the server's CPU at 10,000 streams ×
	// 20 msg/s. An entry is dropped whenever the room's members or their
	// connections change, and rebuilt by the next message.
	roomConns  map[string][]*conn
	online     map[string]bool     // users online on any instance, as the cluster said
	roomOnline map[string]int      // room → members online
	dirty      map[string]struct{} // users whose local streams opened or closed
	recounts   map[string]struct{} // large rooms whose counts changed
	closing    bool
	connsDone  sync.WaitGroup

	presenceWake chan struct{} // dirty has users
	tailWake     chan struct{} // a notice of the log's growth arrived
	noticed      atomic.Int64  // the highest head a notice announced
	announceWake chan struct{}
	announced    atomic.Int64 // the head to announce

	plans     chan *plan // to the deliverer, in the order planned
	freePlans chan *plan
}

// New loads the routing state from store and starts the broker.
func New(ctx context.Context, store Store, cluster Cluster, log *slog.Logger, cfg Config) (*Broker, error) {
	snap, err := store.Snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	b := &Broker{
		store:        timeAppends(store, cfg.Metrics),
		cluster:      cluster,
		log:          log,
		cfg:          cfg.withDefaults(),
		requests:     make(chan *request, 1024),
		stopping:     make(chan struct{}),
		conns:        make(map[string]map[*conn]struct{}),
		roomConns:    make(map[string][]*conn),
		online:       make(map[string]bool),
		roomOnline:   make(map[string]int),
		dirty:        make(map[string]struct{}),
		recounts:     make(map[string]struct{}),
		presenceWake: make(chan struct{}, 1),
		tailWake:     make(chan struct{}, 1),
		announceWake: make(chan struct{}, 1),
		plans:        make(chan *plan, 16),
		freePlans:    make(chan *plan, 17),
	}
	b.load(snap)
	if online, err := cluster.Online(ctx); err != nil {
		log.Warn("presence unavailable; users show offline until it returns", "err", err)
	} else {
		b.setOnline(online)
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	b.stop = stop
	b.delivers.Add(1)
	go b.runDeliverer()
	for _, run := range []func(context.Context){b.runAppender, b.runTailer, b.runAnnouncer, b.runPresence, b.runCounts, b.runHeartbeat} {
		b.workers.Add(1)
		go func() {
			defer b.workers.Done()
			run(runCtx)
		}()
	}
	return b, nil
}

// load replaces the routing state with snap; the caller holds b.mu or
// owns b alone.
func (b *Broker) load(snap chat.Snapshot) {
	b.head = snap.Head
	b.rooms = make(map[string]map[string]struct{}, len(snap.Rooms))
	b.userRooms = make(map[string]map[string]struct{})
	clear(b.roomConns)
	clear(b.roomOnline)
	for _, r := range snap.Rooms {
		b.rooms[r] = make(map[string]struct{})
	}
	for _, m := range snap.Members {
		b.addMember(m.User, m.Room)
	}
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
	if b.online[user] {
		b.roomOnline[room]++
	}
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
	if _, ok := b.rooms[room][user]; ok && b.online[user] {
		b.roomOnline[room]--
	}
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
func (b *Broker) Rooms(ctx context.Context) []RoomInfo {
	b.sync(ctx)
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

// Members lists up to limit of a room's members whose names sort after
// after, by name, with their online flag, and the after of the next page
// ("" if none); chat.ENOTFOUND for a room nobody ever joined. Only the
// copy is made under the routing lock: sorting a crowd's names there
// would hold up the appender.
func (b *Broker) Members(ctx context.Context, room, after string, limit int) ([]Member, string, error) {
	b.sync(ctx)
	b.mu.RLock()
	members, ok := b.rooms[room]
	if !ok {
		b.mu.RUnlock()
		return nil, "", chat.Errorf(chat.ENOTFOUND, "no room %q", room)
	}
	out := make([]Member, 0, min(len(members), 4*limit))
	for u := range members {
		if u > after {
			out = append(out, Member{Username: u, Online: b.online[u]})
		}
	}
	b.mu.RUnlock()
	slices.SortFunc(out, func(a, b Member) int { return compareStrings(a.Username, b.Username) })
	if len(out) <= limit {
		return out, "", nil
	}
	return out[:limit], out[limit-1].Username, nil
}

func (b *Broker) membersLocked(room string) ([]Member, error) {
	members, ok := b.rooms[room]
	if !ok {
		return nil, chat.Errorf(chat.ENOTFOUND, "no room %q", room)
	}
	out := make([]Member, 0, len(members))
	for u := range members {
		out = append(out, Member{Username: u, Online: b.online[u]})
	}
	slices.SortFunc(out, func(a, b Member) int { return compareStrings(a.Username, b.Username) })
	return out, nil
}

// RoomsOf lists the rooms user is a member of, by name.
func (b *Broker) RoomsOf(ctx context.Context, user string) []string {
	b.sync(ctx)
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
// an unknown room and chat.EFORBIDDEN otherwise, as of the log's head: a
// join on another instance a moment ago counts.
func (b *Broker) CheckMember(ctx context.Context, user, room string) error {
	b.sync(ctx)
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

// Close stops the broker after it has answered every queued write. Call
// it after Shutdown and after the HTTP server stopped taking requests.
func (b *Broker) Close() {
	b.stop()
	b.workers.Wait()
	b.seq.Lock()
	b.stopped = true
	close(b.plans)
	b.seq.Unlock()
	b.delivers.Wait()
}

func isCanceled(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
