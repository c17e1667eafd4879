//go:build unix

package cluster_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/ssechat/ssechat/internal/chattest"
)

// The stream cap holds across the instances: with --max-streams-per-user
// 2, one stream on A and one on B fill it, and a third on either is
// refused 429 with Retry-After; a stream closing on B makes room on A.
func TestStreamCapAcrossInstances(t *testing.T) {
	c := startCluster(t, "--limits", "on", "--max-streams-per-user", "2")
	A, B := c.A.server(), c.B.server()
	alice := user(t, A, "alice")
	aliceB := alice.On(B)
	onA := alice.Stream("")
	onA.Ready()
	onB := aliceB.Stream("")
	onB.Ready()
	// Each instance reports its count to Redis just after the stream
	// opened, which is what the other reads.
	waitStreams(t, c, "alice", 2)
	wantStreamRefused(t, c.A, alice)
	wantStreamRefused(t, c.B, aliceB)

	onB.Close()
	waitStreams(t, c, "alice", 1)
	again := alice.Stream("")
	again.Ready()
	waitStreams(t, c, "alice", 2)
	wantStreamRefused(t, c.B, aliceB)
}

// waitStreams waits until the instances' counts of user's streams in
// Redis add up to want.
func waitStreams(t *testing.T, c *cluster, user string, want int) {
	t.Helper()
	eventually(t, chattest.Timeout, "Redis to count "+strconv.Itoa(want)+" streams of "+user, func() bool {
		reply, err := redisDo(c.redis, "HGETALL", c.prefix+"streams:"+user)
		if err != nil {
			t.Fatalf("HGETALL: %v", err)
		}
		fields, _ := reply.([]any)
		n := 0
		for i := 1; i < len(fields); i += 2 {
			v, _ := strconv.Atoi(fields[i].(string))
			n += v
		}
		return n == want
	})
}

// wantStreamRefused opens a stream on in as cl and fails unless it is
// refused with 429, a Retry-After in whole seconds and a JSON error.
func wantStreamRefused(t *testing.T, in *instance, cl *chattest.Client) {
	t.Helper()
	instance := in.URL
	req, err := http.NewRequest("GET", in.URL+"/api/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+cl.Token)
	resp := cl.Raw(req)
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a third stream on %s: status %d %.200s, want 429", instance, resp.StatusCode, body)
	}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || secs < 1 {
		t.Errorf("a third stream on %s: Retry-After %q, want whole seconds", instance, resp.Header.Get("Retry-After"))
	}
	var e struct{ Error string }
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		t.Errorf("a third stream on %s: body %q, want {\"error\": ...}", instance, body)
	}
}
