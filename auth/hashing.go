package auth

import (
	"context"
	"runtime"

	"golang.org/x/crypto/bcrypt"

	"github.com/ssechat/ssechat/chat"
)

// bcrypt takes a core for ≈ 50 ms at cost 10, and every login does one. A
// flood of logins, run at once, would queue every other goroutine behind
// thousands of hashes; so at most GOMAXPROCS hashes run at a time (a
// semaphore), and the logins beyond wait for a slot until their request
// ends, then answer chat.EUNAVAILABLE (503).

func newHashSlots() chan struct{} { return make(chan struct{}, runtime.GOMAXPROCS(0)) }

// errBusy answers a login whose request ended while it waited for a slot.
func errBusy() error {
	return chat.Errorf(chat.EUNAVAILABLE, "too many logins at once: retry")
}

// withHashSlot runs f in a bcrypt slot, or returns errBusy when ctx ends
// first.
func (s *Service) withHashSlot(ctx context.Context, f func()) error {
	select {
	case s.hashing <- struct{}{}:
	case <-ctx.Done():
		return errBusy()
	}
	defer func() { <-s.hashing }()
	f()
	return nil
}

// checkPassword reports whether password is hash's.
func (s *Service) checkPassword(ctx context.Context, hash []byte, password string) (match bool, err error) {
	err = s.withHashSlot(ctx, func() {
		match = bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil
	})
	return match, err
}

// hashPassword hashes password at the service's cost.
func (s *Service) hashPassword(ctx context.Context, password string) (hash []byte, err error) {
	if serr := s.withHashSlot(ctx, func() {
		hash, err = bcrypt.GenerateFromPassword([]byte(password), s.cost)
	}); serr != nil {
		return nil, serr
	}
	return hash, err
}
