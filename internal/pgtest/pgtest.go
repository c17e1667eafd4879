// Package pgtest gives tests a PostgreSQL to talk to: the shared server
// (URL), a schema of their own on it (FreshSchema), or a private cluster
// they may stop and start to play an outage (Start).
//
// A test that cannot get its server skips, unless CHAT_REQUIRE_SERVICES=1
// (CI) makes it fail: a green run must not hide a missing database.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultURL is the shared server of the development machines and CI:
// trust authentication on loopback.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Missing skips the test, or fails it when CHAT_REQUIRE_SERVICES=1.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CHAT_REQUIRE_SERVICES") == "1" {
		t.Fatalf("%s (CHAT_REQUIRE_SERVICES=1)", msg)
	}
	t.Skipf("%s; skipping (set CHAT_REQUIRE_SERVICES=1 to fail instead)", msg)
}

// URL returns the shared server's URL, CHAT_POSTGRES_URL or DefaultURL,
// once it answers.
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv("CHAT_POSTGRES_URL")
	if u == "" {
		u = DefaultURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		Missing(t, "PostgreSQL at %s is unreachable: %v", redact(u), err)
	}
	conn.Close(ctx)
	return u
}

// FreshSchema creates a schema of a random name on the server at baseURL,
// drops it (and all in it) when the test ends, and returns baseURL with a
// search_path that puts every unqualified table into it.
func FreshSchema(t testing.TB, baseURL string) string {
	t.Helper()
	var b [8]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, baseURL)
	if err != nil {
		Missing(t, "PostgreSQL at %s is unreachable: %v", redact(baseURL), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, baseURL)
		if err != nil {
			t.Logf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(baseURL)
	if err != nil {
		t.Fatalf("parse %s: %v", redact(baseURL), err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// Start runs a private PostgreSQL cluster for the test on a free loopback
// port and returns its URL and the means to stop it (immediately, as a
// crash would) and start it again; both fail the test on an error, so call
// them from the test's goroutine. The cluster is removed when the test
// ends. Starting one takes seconds: use it only to take a server away,
// never the shared one. It runs with fsync=off, which loses nothing here:
// an immediate stop kills the server's processes, not the machine.
func Start(t testing.TB) (dbURL string, stop, start func()) {
	t.Helper()
	c := &cluster{bin: binDir(t)}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c.dir, c.data = dir, filepath.Join(dir, "data")
	// The server refuses to run as root: as root, run it as postgres, who
	// must own the directory.
	if os.Geteuid() == 0 {
		pg, err := user.Lookup("postgres")
		if err != nil {
			Missing(t, "running as root and no postgres user to run PostgreSQL as: %v", err)
		}
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.run("initdb", "-D", c.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	c.opts = fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off", port, dir)
	c.start(t)
	t.Cleanup(func() {
		if c.running {
			c.run("pg_ctl", "-D", c.data, "-m", "immediate", "-w", "stop")
		}
	})
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port),
		func() { t.Helper(); c.stop(t) }, func() { t.Helper(); c.start(t) }
}

// cluster is a private server's directory and how to run its programs.
type cluster struct {
	bin, dir, data, opts string
	cred                 *syscall.Credential // nil: as ourselves
	running              bool
}

func (c *cluster) run(name string, args ...string) error {
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Dir = c.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func (c *cluster) start(t testing.TB) {
	t.Helper()
	if err := c.run("pg_ctl", "-D", c.data, "-l", filepath.Join(c.dir, "log"), "-o", c.opts, "-w", "-t", "60", "start"); err != nil {
		t.Fatal(err)
	}
	c.running = true
}

func (c *cluster) stop(t testing.TB) {
	t.Helper()
	if err := c.run("pg_ctl", "-D", c.data, "-m", "immediate", "-w", "stop"); err != nil {
		t.Fatal(err)
	}
	c.running = false
}

// binDir finds the server's programs: the newest Debian-style install, or
// the PATH.
func binDir(t testing.TB) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(p)
	}
	Missing(t, "no PostgreSQL server programs (pg_ctl) in /usr/lib/postgresql/*/bin or the PATH")
	return ""
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// redact hides a password in u for a message.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	return p.Redacted()
}
