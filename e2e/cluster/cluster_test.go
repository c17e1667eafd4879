//go:build unix

package cluster_test

import (
	"testing"

	"github.com/ssechat/ssechat/internal/chattest"
	"github.com/ssechat/ssechat/internal/pgtest"
)

// cluster is two ssechat instances on one PostgreSQL schema and one Redis
// prefix, and nginx in front of them.
type cluster struct {
	A, B   *instance
	LB     *proxy
	redis  string // the instances' --redis
	prefix string // their --redis-prefix
}

// startCluster starts a cluster on a fresh schema of the shared PostgreSQL
// and a fresh prefix of the shared Redis.
func startCluster(t testing.TB, extraFlags ...string) *cluster {
	t.Helper()
	needNginx(t)
	db := pgtest.FreshSchema(t, pgtest.URL(t))
	return startClusterOn(t, db, sharedRedis(t), extraFlags...)
}

// startClusterOn starts a cluster on the database at db (a URL with its
// own search_path) and the Redis at redisURL, under a Redis prefix of its
// own whose keys are deleted at the end.
func startClusterOn(t testing.TB, db, redisURL string, extraFlags ...string) *cluster {
	t.Helper()
	needNginx(t)
	if err := clusterFlags(); err != nil {
		t.Fatal(err)
	}
	c := &cluster{redis: redisURL, prefix: "ssechat_test_" + randomHex(8)}
	t.Cleanup(func() {
		// The instances are gone by now (cleanups run last first); a
		// private Redis, started before them, still runs.
		if err := dropRedisKeys(c.redis, c.prefix); err != nil {
			t.Logf("delete the Redis keys under %s: %v", c.prefix, err)
		}
	})
	flags := []string{
		"--db", db,
		"--redis", redisURL,
		"--redis-prefix", c.prefix,
		"--password-cost", "4",
		"--replay-limit", "100000",
		"--shutdown-timeout", "3s",
		"--limits", "off", // the concurrent posters post as fast as they can
		"--metrics-addr", "",
	}
	flags = append(flags, extraFlags...)
	in := startInstances(t, flags, "A", "B")
	c.A, c.B = in[0], in[1]
	c.LB = startNginx(t, c.A.Addr, c.B.Addr)
	t.Logf("cluster: A %s, B %s, nginx %s, redis %s prefix %s", c.A.URL, c.B.URL, c.LB.URL, redisURL, c.prefix)
	return c
}

// user logs name in on srv and joins rooms there.
func user(t testing.TB, srv *chattest.Server, name string, rooms ...string) *chattest.Client {
	t.Helper()
	c := srv.Login(t, name)
	for _, r := range rooms {
		c.Join(r)
	}
	return c
}
