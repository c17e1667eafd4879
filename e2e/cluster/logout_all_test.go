//go:build unix

package cluster_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/ssechat/ssechat/internal/chattest"
)

// Logout with ?all=1 on one instance ends every session of the user on
// every instance within logoutReach: all their open streams close, and
// every instance answers 401 to all their tokens. Other users go on.
func TestLogoutAllEndsEverySessionEverywhere(t *testing.T) {
	c := startCluster(t)
	A, B := c.A.server(), c.B.server()
	phone := user(t, A, "alice", "lobby")
	laptop, tablet := B.Login(t, "alice"), A.Login(t, "alice")
	bob := user(t, B, "bob", "lobby")
	streams := []*chattest.Stream{phone.On(B).Stream(""), laptop.Stream(""), tablet.Stream("")}
	for _, s := range streams {
		s.Ready()
	}
	bobS := bob.Stream("")
	bobS.Ready()

	start := time.Now()
	laptop.On(A).MustDo("POST", "/api/logout?all=1", nil, nil, http.StatusNoContent)
	for _, s := range streams {
		s.Ended()
	}
	if d := time.Since(start); d > logoutReach {
		t.Fatalf("the streams ended %v after the logout, want within %v", d, logoutReach)
	}
	for _, token := range []*chattest.Client{phone, laptop, tablet} {
		for _, srv := range []*chattest.Server{A, B} {
			eventually(t, logoutReach, "every instance to refuse every token", func() bool {
				return token.On(srv).Do("GET", "/api/me", nil, nil) == http.StatusUnauthorized
			})
		}
	}
	bob.MustDo("GET", "/api/me", nil, nil, http.StatusOK)
	m := bob.Say("lobby", "anyone?")
	bobS.Expect("message", func(e chattest.Event) bool { return e.ID == m.ID })
}
