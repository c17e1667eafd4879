//go:build unix

package cluster_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/ssechat/ssechat/internal/chattest"
)

// logoutReach is how soon a logout on one instance must end the session on
// every other one, open streams included.
const logoutReach = time.Second

// A logout on A ends the session on B within logoutReach: B's open stream
// of that session closes and B answers 401 to its token. The user's other
// session lives on.
func TestLogoutEndsTheSessionEverywhere(t *testing.T) {
	c := startCluster(t)
	A, B := c.A.server(), c.B.server()
	alice := user(t, A, "alice", "lobby")
	other := B.Login(t, "alice") // her second session, on another device
	bob := user(t, B, "bob", "lobby")
	aliceB := alice.On(B)
	aliceB.MustDo("GET", "/api/me", nil, nil, http.StatusOK) // B knows the session, and may cache it
	s := aliceB.Stream("")
	s.Ready()
	otherS := other.Stream("")
	otherS.Ready()

	start := time.Now()
	alice.MustDo("POST", "/api/logout", nil, nil, http.StatusNoContent)
	alice.MustDo("GET", "/api/me", nil, nil, http.StatusUnauthorized)

	s.Ended()
	if d := time.Since(start); d > logoutReach {
		t.Fatalf("the session's stream on B ended %v after the logout on A, want within %v", d, logoutReach)
	}
	eventually(t, logoutReach-time.Since(start), "B to refuse the token", func() bool {
		return aliceB.Do("GET", "/api/me", nil, nil) == http.StatusUnauthorized
	})
	t.Logf("B refused the token %v after the logout on A", time.Since(start))
	aliceB.MustDo("GET", "/api/stream", nil, nil, http.StatusUnauthorized)
	aliceB.MustDo("POST", "/api/rooms/lobby/messages", map[string]string{"text": "after logout"}, nil, http.StatusUnauthorized)

	// Her other session still works on both, its stream still delivers.
	other.MustDo("GET", "/api/me", nil, nil, http.StatusOK)
	other.On(A).MustDo("GET", "/api/me", nil, nil, http.StatusOK)
	m := bob.Say("lobby", "still there?")
	otherS.Expect("message", func(e chattest.Event) bool { return e.ID == m.ID })
}
