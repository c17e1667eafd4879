//go:build unix

package main_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/ssechat/ssechat/internal/chattest"
)

// history prints the newest messages of a room, or of a private
// conversation, oldest first, as tail would; -n pages back past the
// server's 500 a page.
func TestHistory(t *testing.T) {
	srv := chattest.Start(t)
	bob := srv.Login(t, "bob")
	alice := newUser(t, srv.URL).login("alice")
	alice.must("", "join", "ops")
	bob.Join("ops")
	var posted []chattest.Event
	for i := range 503 {
		posted = append(posted, bob.Say("ops", fmt.Sprintf("m%d", i)))
	}
	bob.MustDo("POST", "/api/users/alice/messages", map[string]string{"text": "psst"}, nil, 201)
	alice.must("", "dm", "bob", "yes?")

	sameLines(t, "history -n 2 ops", untimed(t, strings.Split(strings.TrimSuffix(alice.must("", "history", "-n", "2", "ops"), "\n"), "\n")),
		[]string{"#ops bob: m501", "#ops bob: m502"})
	sameLines(t, "history @bob", untimed(t, strings.Split(strings.TrimSuffix(alice.must("", "history", "@bob"), "\n"), "\n")),
		[]string{"@bob → you: psst", "@you → bob: yes?"})
	if got := strings.Count(alice.must("", "history", "ops"), "\n"); got != 50 {
		t.Errorf("history ops printed %d lines, want 50", got)
	}

	out := alice.must("", "history", "--json", "-n", "502", "ops")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 502 {
		t.Fatalf("history -n 502 printed %d lines, want 502", len(lines))
	}
	for i, l := range lines {
		var e struct {
			Event, ID, Room, From, Text, TS string
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		p := posted[i+1]
		if e.Event != "message" || e.ID != p.ID || e.Room != "ops" || e.From != "bob" || e.Text != p.Text || e.TS != p.TS {
			t.Fatalf("line %d: %s, want %+v", i, l, p)
		}
	}

	srv.Login(t, "carol").Join("den")
	alice.refused(1, `you are not a member of "den" (403): join it first with: chat join den`, "history", "den")
}

// rooms lists every room with its member count and the user's rooms
// marked; members lists a room's members with who is online; leave leaves.
func TestRoomsMembersLeave(t *testing.T) {
	srv := chattest.Start(t)
	bob := srv.Login(t, "bob")
	bob.Join("ops")
	bob.Join("zoo")
	s := bob.Stream("")
	s.Ready()
	alice := newUser(t, srv.URL).login("alice")
	alice.must("", "join", "ops")
	alice.must("", "join", "#dev")

	if got, want := alice.must("", "rooms"), "#dev  1 member   joined\n#ops  2 members  joined\n#zoo  1 member\n"; got != want {
		t.Errorf("rooms printed:\n%s\nwant:\n%s", got, want)
	}
	var rooms []map[string]any
	for _, l := range strings.Split(strings.TrimSuffix(alice.must("", "rooms", "--json"), "\n"), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("rooms --json line %q: %v", l, err)
		}
		rooms = append(rooms, v)
	}
	if len(rooms) != 3 || rooms[1]["room"] != "ops" || rooms[1]["members"] != 2.0 || rooms[1]["joined"] != true || rooms[2]["joined"] != false {
		t.Errorf("rooms --json: %v", rooms)
	}

	if got, want := alice.must("", "members", "ops"), "alice offline\nbob online\n"; got != want {
		t.Errorf("members ops printed %q, want %q", got, want)
	}
	if got, want := alice.must("", "members", "--json", "ops"), `{"username":"alice","online":false}`+"\n"+`{"username":"bob","online":true}`+"\n"; got != want {
		t.Errorf("members --json ops printed %q, want %q", got, want)
	}

	alice.must("", "leave", "ops")
	s.Expect("leave", func(e chattest.Event) bool { return e.User == "alice" && e.Room == "ops" })
	alice.refused(1, "you are not a member of #ops: join it first with: chat join ops", "say", "ops")
}

// The exit status says what happened, and stderr says it in plain words.
func TestExitCodes(t *testing.T) {
	srv := chattest.Start(t)
	srv.Login(t, "bob").Join("ops")
	nobody := newUser(t, srv.URL)
	alice := newUser(t, srv.URL).login("alice")

	// 0, and usage on stdout.
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		if r := alice.run("", args...); r.code != 0 || !strings.Contains(r.stdout, "Exit status:") || r.stderr != "" {
			t.Errorf("chat %s: %v, want the usage on stdout and exit 0", args[0], r)
		}
	}
	if r := alice.run("", "tail", "-h"); r.code != 0 || !strings.Contains(r.stdout, "usage: chat tail") {
		t.Errorf("chat tail -h: %v, want its usage on stdout and exit 0", r)
	}

	// 2: usage.
	if r := alice.run(""); r.code != 2 || !strings.Contains(r.stderr, "Usage:") {
		t.Errorf("chat without arguments: %v, want the usage on stderr and exit 2", r)
	}
	alice.refused(2, `unknown command "frobnicate"`, "frobnicate")
	alice.refused(2, "usage: chat join ROOM", "join")
	alice.refused(2, "usage: chat join ROOM", "join", "a", "b")
	alice.refused(2, "flag provided but not defined: -bogus", "tail", "--bogus")
	alice.refused(2, "-n must be 1 or more", "history", "-n", "0", "ops")
	alice.with("CHAT_URL=localhost:8080").refused(2, `CHAT_URL="localhost:8080": not an http:// or https:// URL`, "whoami")
	alice.with("CHAT_RETRY_TIMEOUT=soon").refused(2, "CHAT_RETRY_TIMEOUT", "whoami")

	// 1: the server refused.
	alice.refused(1, `you are not a member of "ops" (403): join it first with: chat join ops`, "say", "ops", "hi")
	alice.refused(1, `no room "nope" (404)`, "members", "nope")
	alice.refused(1, "(400)", "join", "bad/name")

	// 3: no session, or a wrong password.
	nobody.refused(3, "not logged in on "+srv.URL+": log in with: chat login USER", "join", "ops")
	nobody.with("CHAT_PASSWORD=wrong").refused(3, `wrong password for "alice" (401)`, "login", "alice")

	// 4: no server, after retrying for CHAT_RETRY_TIMEOUT.
	gone := chattest.Start(t)
	down := newUser(t, gone.URL, "CHAT_RETRY_TIMEOUT=300ms").login("alice")
	gone.Close()
	down.refused(4, "cannot reach the server at "+gone.URL+" (", "whoami")
	down.refused(4, "retried for 300ms", "say", "ops", "hello")
}

// read marks a room or a conversation read: rooms shows the unread count
// before and none after, and the user's other streams get the read event.
func TestRead(t *testing.T) {
	srv := chattest.Start(t)
	bob := srv.Login(t, "bob")
	bob.Join("ops")
	alice := newUser(t, srv.URL).login("alice")
	alice.must("", "join", "ops")
	first := bob.Say("ops", "one")
	bob.Say("ops", "two")
	bob.MustDo("POST", "/api/users/alice/messages", map[string]string{"text": "psst"}, nil, 201)

	if got, want := alice.must("", "rooms"), "#ops  2 members  joined  2 unread\n"; got != want {
		t.Errorf("rooms printed %q, want %q", got, want)
	}
	if got, want := alice.must("", "read", "ops", first.ID), fmt.Sprintf("ops: read up to %s, 1 unread\n", first.ID); got != want {
		t.Errorf("read ops %s printed %q, want %q", first.ID, got, want)
	}
	if got := alice.must("", "read", "#ops"); !strings.HasSuffix(got, ", 0 unread\n") {
		t.Errorf("read #ops printed %q, want 0 unread", got)
	}
	if got, want := alice.must("", "rooms"), "#ops  2 members  joined\n"; got != want {
		t.Errorf("after read, rooms printed %q, want %q", got, want)
	}
	if got := alice.must("", "read", "@bob"); !strings.HasPrefix(got, "@bob: read up to ") || !strings.HasSuffix(got, ", 0 unread\n") {
		t.Errorf("read @bob printed %q", got)
	}
	srv.Login(t, "carol").Join("den")
	alice.refused(1, `join it first with: chat join den`, "read", "den")
	alice.refused(2, "usage: chat read ROOM|@USER [ID]", "read")
}
