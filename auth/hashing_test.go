package auth

import (
	"context"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssechat/ssechat/chat"
	"github.com/ssechat/ssechat/cluster"
	"github.com/ssechat/ssechat/store/sqlite"
)

func newService(t *testing.T) *Service {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "auth.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return New(db, cluster.NewLocal(), 4)
}

// At most GOMAXPROCS hashes run at once, however many logins come.
func TestHashesRunAtMostGOMAXPROCSAtOnce(t *testing.T) {
	s := newService(t)
	if c := cap(s.hashing); c != runtime.GOMAXPROCS(0) {
		t.Fatalf("%d bcrypt slots, want GOMAXPROCS = %d", c, runtime.GOMAXPROCS(0))
	}
	var running, most atomic.Int64
	var wg sync.WaitGroup
	for range 8 * cap(s.hashing) {
		wg.Go(func() {
			err := s.withHashSlot(context.Background(), func() {
				n := running.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				runtime.Gosched()
				running.Add(-1)
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if m := most.Load(); m > int64(cap(s.hashing)) {
		t.Errorf("%d hashes ran at once, want at most %d", m, cap(s.hashing))
	}
}

// A login waiting for a slot gives up when its request ends, with
// EUNAVAILABLE, and has done nothing: the name is still free. Once a slot
// is free, logins go through again.
func TestLoginWaitingForABusySlotGivesUpWithItsRequest(t *testing.T) {
	s := newService(t)
	for range cap(s.hashing) {
		s.hashing <- struct{}{} // every slot taken
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, _, err := s.Login(ctx, "alice", "secret")
		errc <- err
	}()
	select {
	case err := <-errc:
		t.Fatalf("login with every slot taken returned %v before its request ended", err)
	case <-time.After(50 * time.Millisecond): // proves absence only up to here
	}
	cancel()
	if err := <-errc; chat.ErrorCode(err) != chat.EUNAVAILABLE {
		t.Fatalf("login gave up with %v, want %s", err, chat.EUNAVAILABLE)
	}
	if _, err := s.Canonical(context.Background(), "alice"); chat.ErrorCode(err) != chat.ENOTFOUND {
		t.Fatalf("alice after the abandoned registration: %v, want not found", err)
	}

	<-s.hashing // one slot free
	if _, _, err := s.Login(context.Background(), "alice", "secret"); err != nil {
		t.Fatalf("login with a free slot: %v", err)
	}
	for range cap(s.hashing) - 1 {
		<-s.hashing
	}
	if _, _, err := s.Login(context.Background(), "alice", "wrong"); chat.ErrorCode(err) != chat.EUNAUTHORIZED {
		t.Fatalf("wrong password: %v, want unauthorized", err)
	}
}
