package main

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// system is one chat server under test, seen through the few operations the
// workloads need; ours speaks REST + SSE, the baseline Socket.IO.
type system interface {
	// Prepare makes users ready to connect: for ours, a session each and
	// membership of room (when room is not empty); for Socket.IO nothing,
	// since it has neither accounts nor durable rooms.
	Prepare(ctx context.Context, users []string, room string) error
	// Open opens sub's live connection as user (subscribed to room on
	// Socket.IO, which subscribes per connection) and returns once the
	// connection is ready to receive. Deliveries go to the collector under
	// index sub. The connection lives until ctx ends.
	Open(ctx context.Context, sub int, user, room string) error
	// Enter is a newcomer's whole path: log in, join room, open the
	// connection; it returns once ready (the connect storm).
	Enter(ctx context.Context, sub int, user, room string) error
	// Publisher returns a poster for user in room. On Socket.IO the poster is
	// a connection of its own and is in the room, so what it receives is
	// recorded under sub (unless sub < 0).
	Publisher(ctx context.Context, sub int, user, room string) (poster, error)
	// PosterListens tells whether a poster's own connection receives the
	// room (so no separate listening connection is needed for that member).
	PosterListens() bool
}

// poster sends one message and returns once the system acknowledged it.
type poster interface {
	Post(ctx context.Context, text []byte) error
}

// collector gathers what all connections receive. The current phase is
// swapped atomically between measured intervals, so readers never lock.
type collector struct {
	cur         atomic.Pointer[phase]
	events      atomic.Int64 // every event of any kind
	lastEventNs atomic.Int64
	disconnects atomic.Int64
	reconnects  atomic.Int64
	resets      atomic.Int64 // `reset` events: a resume that could not replay
	// earlyRetries counts streams closed before their `ready` and retried.
	earlyRetries atomic.Int64
}

// message records a chat message delivered to sub at now (Unix
// nanoseconds); data is the event's raw JSON, searched for the load
// generator's marker.
func (c *collector) message(sub int, data []byte, now int64) {
	c.events.Add(1)
	c.lastEventNs.Store(now)
	if sub < 0 {
		return
	}
	seq, sent, ok := findMarker(data)
	if !ok {
		return
	}
	if p := c.cur.Load(); p != nil {
		p.Deliver(sub, seq, sent, now)
	}
}

// other records any other event (join, presence, ready, ...).
func (c *collector) other() {
	c.events.Add(1)
	c.lastEventNs.Store(time.Now().UnixNano())
}

// dialers spreads connections over several loopback source addresses: one
// address has about 28,000 ephemeral ports toward one server port.
type dialers struct {
	ds []*net.Dialer
	n  atomic.Uint64
}

func newDialers(sourceIPs int) *dialers {
	if sourceIPs < 1 {
		sourceIPs = 1
	}
	d := &dialers{}
	for i := 0; i < sourceIPs; i++ {
		nd := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: -1}
		if sourceIPs > 1 {
			nd.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i))}
		}
		d.ds = append(d.ds, nd)
	}
	return d
}

func (d *dialers) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if ip, ok := ctx.Value(sourceKey{}).(net.IP); ok {
		nd := net.Dialer{Timeout: 30 * time.Second, KeepAlive: -1, LocalAddr: &net.TCPAddr{IP: ip}}
		return nd.DialContext(ctx, network, addr)
	}
	nd := d.ds[int(d.n.Add(1)%uint64(len(d.ds)))]
	return nd.DialContext(ctx, network, addr)
}

type sourceKey struct{}

// withSource makes the connections dialed under ctx come from ip (a
// loopback address): one client's, whatever -source-ips says. The soak
// gives each user an address of their own, as the per-address limits
// expect of real clients.
func withSource(ctx context.Context, ip net.IP) context.Context {
	return context.WithValue(ctx, sourceKey{}, ip)
}

// checkLoopback refuses any target that is not on this machine: load is
// only ever sent to loopback.
func checkLoopback(hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("target %q is not a loopback address; chatload only loads 127.0.0.0/8 or ::1", hostport)
	}
	return nil
}

// forEach runs fn for i in [0,n) with at most conc at once, and returns the
// number of failures and the first error.
func forEach(ctx context.Context, n, conc int, fn func(ctx context.Context, i int) error) (int, error) {
	if conc < 1 {
		conc = 1
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failed   int
		firstErr error
		next     atomic.Int64
	)
	for w := 0; w < conc && w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					mu.Lock()
					failed++
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		return failed, ctx.Err()
	}
	return failed, firstErr
}
