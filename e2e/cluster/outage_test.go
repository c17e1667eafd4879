//go:build unix

package cluster_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/ssechat/ssechat/internal/chattest"
	"github.com/ssechat/ssechat/internal/pgtest"
)

// writer is a user's session on one instance.
type writer struct {
	where string // "alice on A", for messages
	base  string
	c     *chattest.Client
}

// pair logs alice in on A and bob on B, both in the lobby, opens a stream
// for each on their instance, and returns once the news crosses between the
// instances (alice sees bob come online). It returns the four ways of
// writing: each user on each instance.
func pair(t *testing.T, c *cluster) (aliceS, bobS *chattest.Stream, writers []writer) {
	t.Helper()
	alice := user(t, c.A.server(), "alice", "lobby")
	bob := user(t, c.B.server(), "bob", "lobby")
	aliceS = alice.Stream("")
	aliceS.Ready()
	bobS = bob.Stream("")
	bobS.Ready()
	waitPresence(aliceS, "bob", "online")
	writers = []writer{
		{"alice on A", c.A.URL, alice},
		{"bob on B", c.B.URL, bob},
		{"alice on B", c.B.URL, alice.On(c.B.server())},
		{"bob on A", c.A.URL, bob.On(c.A.server())},
	}
	return aliceS, bobS, writers
}

// recovered polls w's POSTs until one is acknowledged, within d (503s
// meanwhile are fine), and returns its event.
func recovered(t *testing.T, l *ledger, w writer, d time.Duration) chattest.Event {
	t.Helper()
	var e chattest.Event
	i := 0
	took := eventually(t, d, "a POST as "+w.where+" to be acknowledged", func() bool {
		i++
		status, got, _ := l.post(w.base, w.c.Token, "/api/rooms/lobby/messages", fmt.Sprintf("recovered? %s %d", w.where, i))
		e = got
		return status == http.StatusCreated
	})
	t.Logf("a POST as %s was acknowledged after %v (%d tries)", w.where, took, i)
	return e
}

// Redis goes away: every POST is answered 2xx or 503, streams stay open;
// Redis comes back empty: every stream gets every acknowledged message,
// and the instances recover by themselves (news crosses again, presence is
// rebuilt).
func TestRedisOutage(t *testing.T) {
	db := pgtest.FreshSchema(t, pgtest.URL(t))
	rds := startPrivateRedis(t)
	c := startClusterOn(t, db, rds.URL())
	aliceS, bobS, writers := pair(t, c)
	alice, bob := writers[0].c, writers[1].c

	l := newLedger()
	if status, _, data := l.post(c.B.URL, bob.Token, "/api/rooms/lobby/messages", "before the outage"); status != http.StatusCreated {
		t.Fatalf("POST before the outage: %d %s", status, data)
	}
	rds.crash()
	for i := range 20 {
		w := writers[i%len(writers)]
		status, _, data := l.post(w.base, w.c.Token, "/api/rooms/lobby/messages", fmt.Sprintf("during the outage %d", i))
		switch status {
		case http.StatusCreated:
		case http.StatusServiceUnavailable:
			errorBody(t, "a 503 during the Redis outage", data)
		default:
			t.Fatalf("POST as %s during the Redis outage: status %d %s, want 201 or 503", w.where, status, data)
		}
	}
	t.Logf("during the Redis outage: %v", l)
	rds.restart()

	// Nothing acknowledged is lost, and the streams, open all along, get
	// it all (a stream that had closed would fail here).
	last := l.last()
	l.checkDelivered(t, "alice's stream on A", untilID(t, aliceS, last))
	l.checkDelivered(t, "bob's stream on B", untilID(t, bobS, last))

	// Writes on either instance reach the other's streams again.
	for _, w := range writers[:2] {
		e := recovered(t, l, w, chattest.Timeout)
		for _, s := range []*chattest.Stream{aliceS, bobS} {
			s.Expect("message", func(got chattest.Event) bool { return got.ID == e.ID })
		}
	}
	// Redis lost every key: both users, still connected, are online on
	// both instances again.
	eventually(t, presenceExpiry, "both online on both instances after Redis came back", func() bool {
		return online(t, alice, "lobby", "bob") && online(t, bob, "lobby", "alice") &&
			online(t, alice, "lobby", "alice") && online(t, bob, "lobby", "bob")
	})
}

// PostgreSQL goes away: POSTs answer 503 with a JSON error, streams stay
// open; it comes back: POSTs succeed again within seconds and the streams
// get them.
func TestPostgresOutage(t *testing.T) {
	needNginx(t)
	redisURL := sharedRedis(t)
	pgURL, stopPostgres, startPostgres := pgtest.Start(t)
	c := startClusterOn(t, pgtest.FreshSchema(t, pgURL), redisURL)
	aliceS, bobS, writers := pair(t, c)

	l := newLedger()
	before := recovered(t, l, writers[1], chattest.Timeout)
	aliceS.Expect("message", func(e chattest.Event) bool { return e.ID == before.ID })

	stopPostgres()
	for i := range 8 {
		w := writers[i%len(writers)]
		status, _, data := l.post(w.base, w.c.Token, "/api/rooms/lobby/messages", fmt.Sprintf("during the outage %d", i))
		if status != http.StatusServiceUnavailable {
			t.Fatalf("POST as %s with PostgreSQL down: status %d %s, want 503", w.where, status, data)
		}
		errorBody(t, "a 503 with PostgreSQL down", data)
	}
	startPostgres()

	for _, w := range writers[:2] {
		e := recovered(t, l, w, chattest.Timeout)
		for _, s := range []*chattest.Stream{aliceS, bobS} {
			s.Expect("message", func(got chattest.Event) bool { return got.ID == e.ID })
		}
	}
}
