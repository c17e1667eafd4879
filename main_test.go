package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// Every flag can come from CHAT_ + its name; the command line wins.
func TestSettingsFromEnvironment(t *testing.T) {
	var stdout, stderr bytes.Buffer
	env := envOf(map[string]string{"CHAT_HEARTBEAT": "1s", "CHAT_WRITE_GAP": "0", "CHAT_DB": "from-env.db", "PORT": "9999"})
	s, err := parseSettings([]string{"--db", "from-flag.db"}, env, &stdout, &stderr)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, stderr.String())
	}
	if s.heartbeat != time.Second || s.writeGap != 0 || s.db != "from-flag.db" || s.addr != ":9999" {
		t.Fatalf("heartbeat %v, write gap %v, db %q, addr %q; want 1s, 0, from-flag.db, :9999", s.heartbeat, s.writeGap, s.db, s.addr)
	}
}

// Every problem is listed at once, and the exit status is 2.
func TestSettingsListEveryProblem(t *testing.T) {
	var stdout, stderr bytes.Buffer
	env := envOf(map[string]string{"CHAT_HEARTBEAT": "soon", "CHAT_REDIS": "redis://127.0.0.1:6379/0"})
	code := run([]string{"--password-cost", "99", "--replay-limit", "-1", "--log-level", "loud", "stray"}, env, &stdout, &stderr)
	if code != 2 {
		t.Fatalf("exit status %d, want 2; stderr:\n%s", code, stderr.String())
	}
	out := stderr.String()
	for _, want := range []string{"CHAT_HEARTBEAT", "--log-level", "--password-cost", "--replay-limit", "--redis", "stray"} {
		if !strings.Contains(out, want) {
			t.Errorf("stderr does not mention %s:\n%s", want, out)
		}
	}
}

// --help exits 0 and says first what the program is.
func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--help"}, envOf(nil), &stdout, &stderr); code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
	first, _, _ := strings.Cut(stdout.String(), "\n")
	if first != about {
		t.Fatalf("first line %q, want %q", first, about)
	}
	if !strings.Contains(stdout.String(), "-write-gap") || !strings.Contains(stdout.String(), "CHAT_WRITE_GAP") {
		t.Fatalf("help lacks the flags or the environment rule:\n%s", stdout.String())
	}
}
