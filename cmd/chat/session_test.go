//go:build unix

package main_test

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ssechat/ssechat/internal/chattest"
	"github.com/ssechat/ssechat/internal/pgtest"
)

// chat login keeps the session in one file per server under
// $XDG_CONFIG_HOME/ssechat/sessions, readable by the user alone; every
// command then uses it; logout ends it on the server and removes it.
func TestLoginKeepsTheSession(t *testing.T) {
	srv := chattest.Start(t)
	other := chattest.Start(t)
	alice := newUser(t, srv.URL)

	if out := alice.with("CHAT_PASSWORD=pw-alice").must("", "login", "alice"); out != "" {
		t.Errorf("login printed %q; a login that worked says nothing", out)
	}
	dir := filepath.Join(alice.home, "config", "ssechat")
	file := filepath.Join(dir, "sessions", url.QueryEscape(srv.URL))
	for path, mode := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, filepath.Dir(file): 0o700 | os.ModeDir, file: 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode(), mode)
		}
	}
	if got := alice.must("", "whoami"); got != "alice\n" {
		t.Errorf("whoami printed %q, want alice", got)
	}
	// Any spelling of the server is the same server.
	if got := alice.with("CHAT_URL="+strings.ToUpper(srv.URL)+"/").must("", "whoami"); got != "alice\n" {
		t.Errorf("whoami on %s/ printed %q, want alice", strings.ToUpper(srv.URL), got)
	}

	// Another server has a session of its own: logging in there keeps
	// this one.
	alice.with("CHAT_URL=" + other.URL).login("carol")
	if got := alice.with("CHAT_URL="+other.URL).must("", "whoami"); got != "carol\n" {
		t.Errorf("whoami on the other server printed %q, want carol", got)
	}
	if got := alice.must("", "whoami"); got != "alice\n" {
		t.Errorf("after logging in elsewhere, whoami printed %q, want alice", got)
	}

	// A wrong password is exit status 3 and keeps the session there was.
	alice.with("CHAT_PASSWORD=nope").refused(3, `wrong password for "alice" (401)`, "login", "alice")
	if got := alice.must("", "whoami"); got != "alice\n" {
		t.Errorf("after a wrong password whoami printed %q, want alice", got)
	}

	// Logout ends the session on the server and forgets it here.
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	alice.must("", "logout")
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("after logout the session file is still there (%v)", err)
	}
	alice.refused(3, "not logged in on "+srv.URL+": log in with: chat login USER", "whoami")
	token := strings.Split(strings.Split(string(data), `"token":"`)[1], `"`)[0]
	alice.with("CHAT_TOKEN="+token).refused(3, "(401): log in with: chat login USER", "whoami")
	if got := alice.with("CHAT_URL="+other.URL).must("", "whoami"); got != "carol\n" {
		t.Errorf("logging out of one server logged out of the other: whoami printed %q", got)
	}
}

// CHAT_TOKEN is used instead of the stored session, for every command.
func TestChatTokenOverrides(t *testing.T) {
	srv := chattest.Start(t)
	bob := srv.Login(t, "bob")
	u := newUser(t, srv.URL).login("alice")
	if got := u.with("CHAT_TOKEN="+bob.Token).must("", "whoami"); got != "bob\n" {
		t.Errorf("with CHAT_TOKEN of bob, whoami printed %q", got)
	}
	// Without a stored session at all.
	if got := newUser(t, srv.URL, "CHAT_TOKEN="+bob.Token).must("", "whoami"); got != "bob\n" {
		t.Errorf("with CHAT_TOKEN of bob and no session, whoami printed %q", got)
	}
	// Logging out CHAT_TOKEN's session leaves the stored one be.
	u.with("CHAT_TOKEN="+bob.Token).must("", "logout")
	if status := bob.Do("GET", "/api/me", nil, nil); status != 401 {
		t.Errorf("bob's session after chat logout with CHAT_TOKEN: GET /api/me %d, want 401", status)
	}
	if got := u.must("", "whoami"); got != "alice\n" {
		t.Errorf("after logging out CHAT_TOKEN's session, whoami printed %q, want alice", got)
	}
}

// Without CHAT_PASSWORD and without a terminal to ask on, login says what
// to do (exit status 2) instead of waiting.
func TestLoginWithoutPasswordOrTerminal(t *testing.T) {
	srv := chattest.Start(t)
	newUser(t, srv.URL).refused(2, "no password: set CHAT_PASSWORD, or run chat login on a terminal", "login", "alice")
}

// logout --all ends every session of the user, and a running tail with
// them: it exits 3 and says to log in.
func TestLogoutAllEndsTail(t *testing.T) {
	srv := chattest.Start(t)
	laptop := newUser(t, srv.URL).login("alice")
	phone := newUser(t, srv.URL).login("alice")
	state := filepath.Join(laptop.home, "tail.pos")
	tail := laptop.start("tail", "--state", state)
	waitFile(t, state)
	phone.must("", "logout", "--all")
	if code := tail.exit(); code != 3 {
		t.Errorf("tail exited %d after logout --all, want 3", code)
	}
	if !strings.Contains(tail.stderr.String(), "log in with: chat login USER") {
		t.Errorf("tail's stderr %q does not say to log in", tail.stderr.String())
	}
	laptop.refused(3, "(401)", "whoami")
}

// Without CHAT_PASSWORD, login asks on the terminal, as ssh does: the
// prompt and the answer go through /dev/tty (here a pseudo-terminal that
// script(1) makes), and what is typed is not echoed.
func TestLoginAsksOnTheTerminal(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		pgtest.Missing(t, "script (util-linux) is not on the PATH")
	}
	srv := chattest.Start(t)
	u := newUser(t, srv.URL)
	cmd := exec.Command("script", "-qec", chatBin+" login alice", "/dev/null")
	cmd.Env, cmd.Dir = u.env, u.home
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	b := startBg(t, cmd, []string{"login alice, on a terminal"})
	chattest.Eventually(t, "the password prompt", func() bool {
		return strings.Contains(b.stdout.String(), "Password for alice on "+srv.URL+": ")
	})
	// Only now: typed before echo is off, it would show.
	if _, err := stdin.Write([]byte("typed-secret\n")); err != nil {
		t.Fatal(err)
	}
	if code := b.exit(); code != 0 {
		t.Fatalf("login on a terminal exited %d: %q", code, b.stdout.String())
	}
	if strings.Contains(b.stdout.String(), "typed-secret") {
		t.Errorf("the terminal showed the password: %q", b.stdout.String())
	}
	if got := u.must("", "whoami"); got != "alice\n" {
		t.Errorf("after login on a terminal whoami printed %q", got)
	}
	u.with("CHAT_PASSWORD=typed-secret").must("", "login", "alice")
}
