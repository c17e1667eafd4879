//go:build unix

package cluster_test

import (
	"testing"

	"github.com/ssechat/ssechat/internal/chattest"
)

// A large room's member and online counts are the cluster's: a stream
// opened on B counts in the members events that A's streams get, and so
// does its closing.
func TestLargeRoomCountsAcrossInstances(t *testing.T) {
	c := startCluster(t, "--large-room", "2")
	alice := user(t, c.A.server(), "alice", "big")
	bob := user(t, c.B.server(), "bob", "big")
	user(t, c.A.server(), "carol", "big")

	aliceS := alice.Stream("")
	aliceS.Ready()
	counts := func(online int) func(chattest.Event) bool {
		return func(e chattest.Event) bool { return e.Room == "big" && e.Members == 3 && e.Online == online }
	}
	aliceS.Expect("members", counts(1)) // the snapshot: alice herself
	bobS := bob.Stream("")
	bobS.Ready()
	aliceS.Expect("members", counts(2))
	bobS.Expect("members", counts(2)) // B's snapshot counts alice's stream on A
	bobS.Close()
	aliceS.Expect("members", counts(1))
}
