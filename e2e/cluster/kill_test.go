//go:build unix

package cluster_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ssechat/ssechat/internal/chattest"
)

// presenceExpiry is how soon the survivors must see the users of an
// instance that died (kill -9) go offline.
const presenceExpiry = 30 * time.Second

// kill -9 of one instance while writers on both and through nginx post:
// its clients reconnect through nginx with their Last-Event-ID and get
// every acknowledged message exactly once; the survivor's streams lose
// nothing; the dead instance's users go offline within presenceExpiry;
// restarted, it rejoins.
func TestKillOneInstance(t *testing.T) {
	c := startCluster(t)
	A, B, lb := c.A.server(), c.B.server(), c.LB.server()
	carol := user(t, B, "carol", "lobby") // watches on B, the survivor
	alice := user(t, A, "alice", "lobby") // reads on A, then through nginx
	dave := user(t, A, "dave", "lobby")   // only ever on A
	carolS := carol.Stream("")
	carolS.Ready()
	aliceS := alice.Stream("")
	aliceS.Ready()
	daveS := dave.Stream("")
	daveS.Ready()
	waitPresence(carolS, "alice", "online")
	waitPresence(carolS, "dave", "online")

	l := newLedger()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// write posts as w to base until stopped, or until the first POST
	// that is not acknowledged when giveUp.
	write := func(base string, w *chattest.Client, giveUp bool) {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			status, _, _ := l.post(base, w.Token, "/api/rooms/lobby/messages", fmt.Sprintf("%s %d", w.Name, i))
			if status != http.StatusCreated {
				if giveUp {
					return
				}
				time.Sleep(10 * time.Millisecond) // pace the retries: nginx answers 502 at once
			}
		}
	}
	for i := range 2 {
		onA, onB := user(t, A, fmt.Sprintf("onA%d", i), "lobby"), user(t, B, fmt.Sprintf("onB%d", i), "lobby")
		wg.Go(func() { write(c.A.URL, onA, true) })
		wg.Go(func() { write(c.B.URL, onB, true) })
	}
	viaNginx := user(t, lb, "vianginx", "lobby")
	wg.Go(func() { write(c.LB.URL, viaNginx, false) })
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	// Alice has read some of it when A dies.
	chattest.Eventually(t, "100 acknowledged writes", func() bool { return l.count() >= 100 })
	messages := 0
	aliceRead := aliceS.Until(func(f chattest.Frame) bool {
		if f.Kind == "message" {
			messages++
		}
		return messages == 20
	})
	killed := time.Now()
	c.A.kill()
	aliceRead = append(aliceRead, aliceS.Ended()...) // what came before the connection dropped
	position := aliceRead[len(aliceRead)-1].ID

	// She reconnects through nginx, which finds only B.
	s := alice.On(lb).Stream(position)
	aliceRead = append(aliceRead, resumed(t, s)...)
	n := l.count()
	chattest.Eventually(t, "50 more acknowledged writes after the kill", func() bool { return l.count() >= n+50 })
	close(stop)
	wg.Wait()
	t.Logf("writes: %v", l)

	last := l.last()
	aliceRead = readThrough(t, s, aliceRead, last)
	l.checkDelivered(t, "alice, across the kill", aliceRead)
	carolRead := untilID(t, carolS, last)
	l.checkDelivered(t, "carol on B", carolRead)

	// Dave's only stream was on A: B lists him offline, and its streams
	// say so, within presenceExpiry of the kill.
	eventually(t, presenceExpiry-time.Since(killed), "B to list dave offline", func() bool {
		return !online(t, carol, "lobby", "dave")
	})
	t.Logf("dave went offline %v after the kill", time.Since(killed))
	if !hasPresence(carolRead, "dave", "offline") {
		waitPresence(carolS, "dave", "offline")
	}
	// Alice, whose stream is on B now, is online (whatever A's death did
	// to her presence meanwhile).
	chattest.Eventually(t, "B to list alice online", func() bool { return online(t, carol, "lobby", "alice") })

	// A comes back on its port and rejoins the chat.
	c.A.restart()
	back := carol.On(A).Say("lobby", "A is back")
	for _, s := range []*chattest.Stream{carolS, s} {
		s.Expect("message", func(e chattest.Event) bool { return e.ID == back.ID })
	}
	fresh := dave.On(A).Stream("")
	fresh.Ready()
	waitPresence(carolS, "dave", "online")
}

// readThrough reads s on after frames (what it gave so far) until a log
// event with an id of at least id, unless frames already hold one.
func readThrough(t testing.TB, s *chattest.Stream, frames []chattest.Frame, id int64) []chattest.Frame {
	t.Helper()
	for _, f := range frames {
		if isLogEvent(f) && num(t, f.ID) >= id {
			return frames
		}
	}
	return append(frames, untilID(t, s, id)...)
}

// hasPresence tells whether frames show user's presence becoming status.
func hasPresence(frames []chattest.Frame, user, status string) bool {
	for _, f := range frames {
		if f.Kind == "presence" && f.Event.User == user && f.Event.Status == status {
			return true
		}
	}
	return false
}
