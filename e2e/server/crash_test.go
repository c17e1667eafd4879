//go:build unix

package server_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ssechat/ssechat/internal/chattest"
)

// acks collects what concurrent writers had acknowledged.
type acks struct {
	mu     sync.Mutex
	text   map[int64]string // acknowledged id → text
	failed int              // POSTs that got no acknowledgement
}

func (a *acks) count() int { a.mu.Lock(); defer a.mu.Unlock(); return len(a.text) }

// write posts n messages to the lobby as c, one after another, until one
// fails; it never fails the test, so it can run in a goroutine.
func (a *acks) write(base string, c *chattest.Client, n int) {
	for i := range n {
		text := fmt.Sprintf("%s %d", c.Name, i)
		e, err := post(context.Background(), base, c.Token, "/api/rooms/lobby/messages", text)
		a.mu.Lock()
		if err != nil {
			a.failed++
			a.mu.Unlock()
			return
		}
		id, _ := strconv.ParseInt(e.ID, 10, 64)
		a.text[id] = text
		a.mu.Unlock()
	}
}

// TestBinary runs the built ssechat command, built once for its subtests.
func TestBinary(t *testing.T) {
	bin := chattest.BuildServer(t)
	t.Run("SIGKILL loses no acknowledged write", func(t *testing.T) { testSIGKILL(t, bin) })
	t.Run("SIGTERM ends streams and resume loses nothing", func(t *testing.T) { testSIGTERM(t, bin) })
	t.Run("history-retention prunes", func(t *testing.T) { testRetentionFlag(t, bin) })
	t.Run("Idempotency-Key survives kill -9 and a restart", func(t *testing.T) { testKeySurvivesRestart(t, bin) })
}

// --history-retention reaches the store: a server started with a tiny one
// prunes the history an earlier run wrote, and a resume from before resets.
func testRetentionFlag(t *testing.T, bin string) {
	db := filepath.Join(t.TempDir(), "chat.db")
	first := chattest.StartProc(t, bin, db)
	alice := first.Server().Login(t, "alice")
	alice.Join("lobby")
	s := alice.Stream("")
	last := s.Ready()
	alice.Say("lobby", "soon forgotten")
	s.Close()
	first.Signal(syscall.SIGTERM)
	if err := first.Wait(); err != nil {
		t.Fatalf("first server: %v", err)
	}

	second := chattest.StartProc(t, bin, db, "--history-retention", "1ms")
	again := second.Server().Anonymous(t)
	again.Token, again.Name = alice.Token, alice.Name
	chattest.Eventually(t, "the old history to be pruned", func() bool {
		return len(again.History("lobby")) == 0
	})
	frames := untilReady(again.Stream(last))
	if frames[0].Kind != "reset" || frames[0].Event.Reason == "" {
		t.Fatalf("resume into pruned history: %s", chattest.Kinds(frames))
	}
	for _, bad := range []string{"-1h", "soon"} {
		// Accepted by mistake, the server would run until the timeout.
		ctx, cancel := context.WithTimeout(context.Background(), chattest.Timeout)
		out, err := exec.CommandContext(ctx, bin, "--history-retention", bad, "--addr", "127.0.0.1:0",
			"--db", filepath.Join(t.TempDir(), "x.db")).CombinedOutput()
		cancel()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Fatalf("--history-retention %s: %v, want exit status 2 (refused settings): %s", bad, err, out)
		}
	}
}

// Every POST answered 2xx survives kill -9, and a Last-Event-ID from before
// the crash still resumes exactly.
func testSIGKILL(t *testing.T, bin string) {
	db := filepath.Join(t.TempDir(), "chat.db")
	flags := []string{"--replay-limit", "100000"}
	first := chattest.StartProc(t, bin, db, flags...)
	srv := first.Server()
	rita := srv.Login(t, "rita")
	rita.Join("lobby")
	var writers []*chattest.Client
	for i := range 8 {
		w := srv.Login(t, fmt.Sprintf("writer%d", i))
		w.Join("lobby")
		writers = append(writers, w)
	}
	ritaS := rita.Stream("")
	before := ritaS.Ready() // a position from before any write

	a := &acks{text: map[int64]string{}}
	var wg sync.WaitGroup
	for _, w := range writers {
		wg.Go(func() { a.write(first.URL, w, 100) })
	}
	// Two more goroutines register new accounts until the crash (logins
	// are committed in batches of their own), and one joins rooms.
	var regMu sync.Mutex
	registered := map[string]string{} // username → token
	var joined []string               // rooms rita joined, acknowledged
	wg.Go(func() {
		for i := 0; ; i++ {
			room := fmt.Sprintf("room%d", i)
			status, _, err := send(context.Background(), first.URL, rita.Token, "/api/rooms/"+room+"/join", struct{}{})
			if err != nil || status != 200 {
				return
			}
			regMu.Lock()
			joined = append(joined, room)
			regMu.Unlock()
		}
	})
	for g := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				name := fmt.Sprintf("new%d_%d", g, i)
				token, err := login(first.URL, name, "pw-"+name)
				if err != nil {
					return
				}
				regMu.Lock()
				registered[name] = token
				regMu.Unlock()
			}
		})
	}
	// A position in the middle of the writes, as a reader had it.
	var seen int
	mid := ritaS.Until(func(f chattest.Frame) bool {
		if f.Kind == "message" {
			seen++
		}
		return seen == 100
	})
	midID := mid[len(mid)-1].ID
	chattest.Eventually(t, "300 acknowledged writes", func() bool { return a.count() >= 300 })
	first.Signal(syscall.SIGKILL)
	first.Wait()
	wg.Wait()
	t.Logf("killed with %d writes acknowledged and %d writers cut off", len(a.text), a.failed)
	if a.failed == 0 {
		t.Fatal("every write finished before the kill: it did not happen mid-stream")
	}

	second := chattest.StartProc(t, bin, db, flags...)
	again := second.Server().Anonymous(t)
	again.Token, again.Name = rita.Token, rita.Name // sessions survive too
	// So do accounts: the old password logs in, another one does not (a
	// lost account would be registered anew by any password).
	second.Server().Login(t, writers[0].Name)
	again.MustDo("POST", "/api/login", map[string]string{"username": writers[1].Name, "password": "not theirs"}, nil, 401)
	t.Logf("%d accounts registered and %d rooms joined while writing", len(registered), len(joined))
	var me struct{ Rooms []string }
	again.MustDo("GET", "/api/me", nil, &me, 200)
	for _, room := range joined {
		if !slices.Contains(me.Rooms, room) {
			t.Fatalf("rita's acknowledged join of %s was lost: she is in %v", room, me.Rooms)
		}
	}
	for name, token := range registered {
		c := second.Server().Anonymous(t)
		c.Token = token
		var me struct{ Username string }
		if got := c.Do("GET", "/api/me", nil, &me); got != 200 || me.Username != name {
			t.Fatalf("session of %s, registered before the crash: status %d, user %q", name, got, me.Username)
		}
		c.Token = ""
		if got := c.Do("POST", "/api/login", map[string]string{"username": name, "password": "not theirs"}, nil); got != 401 {
			t.Fatalf("account %s, registered before the crash: a wrong password got %d, want 401", name, got)
		}
	}

	// History holds every acknowledged message, with its text, once (and
	// reading it needs rita's membership, which survived as well).
	history := again.History("lobby")
	inHistory := map[int64]string{}
	var historyIDs []string
	for _, e := range history {
		id := num(t, e.ID)
		if _, dup := inHistory[id]; dup {
			t.Fatalf("message %d twice in history", id)
		}
		inHistory[id] = e.Text
		historyIDs = append(historyIDs, e.ID)
	}
	for id, text := range a.text {
		if got, ok := inHistory[id]; !ok || got != text {
			t.Fatalf("acknowledged message %d %q: after the crash history has %q (present: %v)", id, text, got, ok)
		}
	}
	// Unacknowledged writes may or may not have been committed; at most
	// one per writer was in flight.
	if extra := len(history) - len(a.text); extra < 0 || extra > len(writers) {
		t.Fatalf("history has %d messages, %d were acknowledged", len(history), len(a.text))
	}

	// Resumed streams from before the crash give exactly the history after
	// their position, in order.
	for _, from := range []string{before, midID} {
		frames := untilReady(again.Stream(from))
		if frames[0].Kind == "reset" {
			t.Fatalf("resume from %s after the crash reset: %s", from, frames[0].Data)
		}
		checkIncreasing(t, num(t, from), frames)
		want := slices.DeleteFunc(slices.Clone(historyIDs), func(id string) bool { return num(t, id) <= num(t, from) })
		if got := messageIDs(frames); !slices.Equal(got, want) {
			t.Fatalf("resume from %s: %d messages, history has %d after it", from, len(got), len(want))
		}
	}
	if next := again.Say("lobby", "after the crash"); num(t, next.ID) <= num(t, historyIDs[len(historyIDs)-1]) {
		t.Fatalf("id %s after restart is not above the history's last %s", next.ID, historyIDs[len(historyIDs)-1])
	}
}

// SIGTERM: every open stream gets a shutdown event with a retry hint and
// ends within --shutdown-timeout, the process exits 0 after finishing the
// POSTs in flight, and after a restart a resume loses nothing.
func testSIGTERM(t *testing.T, bin string) {
	const shutdownTimeout = 3 * time.Second
	db := filepath.Join(t.TempDir(), "chat.db")
	flags := []string{"--shutdown-timeout", shutdownTimeout.String(), "--history-retention", "720h"}
	first := chattest.StartProc(t, bin, db, flags...)
	srv := first.Server()
	alice, bob := srv.Login(t, "alice"), srv.Login(t, "bob")
	alice.Join("lobby")
	bob.Join("lobby")
	aliceS, aliceTab2, bobS := alice.Stream(""), alice.Stream(""), bob.Stream("")
	for _, s := range []*chattest.Stream{aliceS, aliceTab2, bobS} {
		s.Ready()
	}

	// Bob keeps writing through the shutdown until the server refuses.
	a := &acks{text: map[int64]string{}}
	var wg sync.WaitGroup
	wg.Go(func() { a.write(first.URL, bob, 100000) })
	chattest.Eventually(t, "20 acknowledged writes", func() bool { return a.count() >= 20 })
	start := time.Now()
	first.Signal(syscall.SIGTERM)

	var aliceFrames []chattest.Frame
	for i, s := range []*chattest.Stream{aliceS, aliceTab2, bobS} {
		frames := s.Ended()
		within(t, fmt.Sprintf("stream %d's end", i), time.Since(start), shutdownTimeout)
		if len(frames) == 0 {
			t.Fatalf("stream %d ended without a shutdown event", i)
		}
		bye := frames[len(frames)-1]
		if bye.Kind != "shutdown" || bye.Retry == "" || bye.Event.Reason == "" || bye.Event.ID != bye.ID {
			t.Fatalf("stream %d ended with %s %q (retry %q), want a shutdown event with a retry hint: %s",
				i, bye.Kind, bye.Data, bye.Retry, chattest.Kinds(frames))
		}
		checkIncreasing(t, 0, frames)
		if i == 0 {
			aliceFrames = frames
		}
	}
	if err := first.Wait(); err != nil {
		t.Fatalf("server exited with %v, want status 0", err)
	}
	within(t, "the graceful exit", time.Since(start), shutdownTimeout)
	wg.Wait()
	t.Logf("stopped %v after SIGTERM with %d writes acknowledged", time.Since(start), a.count())

	second := chattest.StartProc(t, bin, db, flags...)
	again := second.Server().Anonymous(t)
	again.Token, again.Name = alice.Token, alice.Name
	bye := aliceFrames[len(aliceFrames)-1]
	var acked []string
	for id := range a.text {
		acked = append(acked, strconv.FormatInt(id, 10))
	}
	slices.SortFunc(acked, func(x, y string) int { return int(num(t, x) - num(t, y)) })
	frames := untilReady(again.Stream(bye.ID))
	if frames[0].Kind == "reset" {
		t.Fatalf("resume from the shutdown position %s reset: %s", bye.ID, frames[0].Data)
	}
	checkIncreasing(t, num(t, bye.ID), frames)
	// What alice read before the shutdown and what the resume gave are
	// every acknowledged message, once.
	got := append(messageIDs(aliceFrames), messageIDs(frames)...)
	if !slices.Equal(got, acked) {
		t.Fatalf("alice read %d messages before the shutdown and %d on resuming from %s; %d were acknowledged",
			len(messageIDs(aliceFrames)), len(messageIDs(frames)), bye.ID, len(acked))
	}
}
