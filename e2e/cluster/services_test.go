//go:build unix

package cluster_test

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssechat/ssechat/internal/pgtest"
)

// need skips the test when a service it needs is unavailable, or fails it
// under CHAT_REQUIRE_SERVICES=1 (CI), where nothing may be skipped.
func need(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		pgtest.Missing(t, "%s is unavailable: %v", what, err)
	}
}

// needProgram finds name on PATH (or at one of paths), as need does.
func needProgram(t testing.TB, name string, paths ...string) string {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, err := exec.LookPath(name)
	need(t, name, err)
	return p
}

// needNginx finds nginx (.ci/run installs Debian's nginx-light).
func needNginx(t testing.TB) string {
	t.Helper()
	return needProgram(t, "nginx", "/usr/sbin/nginx")
}

// sharedRedis is the Redis the tests share, each cluster under a prefix of
// its own: CHAT_REDIS_URL, or the machine's own server.
func sharedRedis(t testing.TB) string {
	t.Helper()
	u := os.Getenv("CHAT_REDIS_URL")
	if u == "" {
		u = "redis://127.0.0.1:6379/0"
	}
	redisOnce.Do(func() {
		_, redisErr = redisDo(u, "PING")
	})
	need(t, "Redis at "+u, redisErr)
	return u
}

var (
	redisOnce sync.Once
	redisErr  error
)

// dropRedisKeys deletes the keys under prefix: a cluster's leftovers in
// the shared Redis. Channels leave nothing behind.
func dropRedisKeys(redisURL, prefix string) error {
	cursor := "0"
	for {
		reply, err := redisDo(redisURL, "SCAN", cursor, "MATCH", prefix+"*", "COUNT", "1000")
		if err != nil {
			return err
		}
		page, ok := reply.([]any)
		if !ok || len(page) != 2 {
			return fmt.Errorf("SCAN answered %v", reply)
		}
		cursor, _ = page[0].(string)
		keys, _ := page[1].([]any)
		if len(keys) > 0 {
			args := []string{"DEL"}
			for _, k := range keys {
				args = append(args, k.(string))
			}
			if _, err := redisDo(redisURL, args...); err != nil {
				return err
			}
		}
		if cursor == "0" {
			return nil
		}
	}
}

// redisDo sends one command on a connection of its own (after SELECT of
// the URL's database) and returns the reply: a string, an int64, nil, or
// a []any of those. The tests need a handful of commands, not a client.
func redisDo(redisURL string, args ...string) (any, error) {
	u, err := url.Parse(redisURL)
	if err != nil {
		return nil, err
	}
	conn, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	if db := strings.TrimPrefix(u.Path, "/"); db != "" && db != "0" {
		if _, err := redisCommand(conn, r, "SELECT", db); err != nil {
			return nil, err
		}
	}
	return redisCommand(conn, r, args...)
}

func redisCommand(w io.Writer, r *bufio.Reader, args ...string) (any, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return nil, err
	}
	return redisReply(r)
}

// redisReply reads one RESP2 reply.
func redisReply(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("redis: empty reply line")
	}
	switch body := line[1:]; line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, errors.New("redis: " + body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = redisReply(r); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("redis: unexpected reply %q", line)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// freePort returns a loopback port that was free a moment ago, for the
// programs that must be told their port before they start (nginx,
// redis-server, postgres). A program that then finds it taken fails to
// start, and its starter tries another.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// listening polls until something accepts connections at addr, or until
// deadline or until exited is closed.
func listening(addr string, exited <-chan struct{}, deadline time.Time) bool {
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
