//go:build unix

package main_test

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/ssechat/ssechat/internal/chattest"
)

var clock = regexp.MustCompile(`^\d\d:\d\d:\d\d `)

// untimed drops the time each line starts with, failing the test if one
// has none.
func untimed(t testing.TB, lines []string) []string {
	t.Helper()
	out := make([]string, len(lines))
	for i, l := range lines {
		if !clock.MatchString(l) {
			t.Errorf("line %q does not start with the time (15:04:05)", l)
		}
		out[i] = clock.ReplaceAllString(l, "")
	}
	return out
}

func sameLines(t testing.TB, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// tail prints one readable line per event; killed (SIGTERM, SIGINT) it
// exits 0, and the next run prints exactly what was missed, then goes on
// live. The position is kept per server, user and filter under
// $XDG_STATE_HOME/ssechat/tail/.
func TestTailResumesAfterARestart(t *testing.T) {
	srv := chattest.Start(t)
	bob := srv.Login(t, "bob")
	alice := newUser(t, srv.URL).login("alice")
	alice.must("", "join", "ops")
	state := filepath.Join(alice.home, "state", "ssechat", "tail", url.QueryEscape(srv.URL), "alice", "all")

	tail := alice.start("tail")
	waitFile(t, state)
	bob.Join("ops")
	bob.Say("ops", "hello")
	bob.MustDo("POST", "/api/users/alice/messages", map[string]string{"text": "psst"}, nil, 201)
	alice.must("", "dm", "bob", "hi bob")
	alice.must("", "say", "ops", "@bob in the room, to you alone")
	sameLines(t, "tail", untimed(t, tail.waitLines(5)), []string{
		"#ops bob joined",
		"#ops bob: hello",
		"@bob → you: psst",
		"@you → bob: hi bob",
		"@you → bob: in the room, to you alone",
	})
	if code := tail.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("tail exited %d on SIGTERM, want 0", code)
	}

	// Missed while no tail ran.
	bob.Say("ops", "missed 1")
	bob.Say("ops", "missed 2")
	bob.MustDo("POST", "/api/rooms/ops/leave", nil, nil, 204)

	tail = alice.start("tail")
	sameLines(t, "tail, again", untimed(t, tail.waitLines(3)), []string{
		"#ops bob: missed 1",
		"#ops bob: missed 2",
		"#ops bob left",
	})
	bob.Join("ops")
	bob.Say("ops", "live")
	sameLines(t, "tail, again, live", untimed(t, tail.waitLines(5))[3:], []string{"#ops bob joined", "#ops bob: live"})
	if code := tail.stop(syscall.SIGINT); code != 0 {
		t.Errorf("tail exited %d on SIGINT, want 0", code)
	}
	if len(tail.lines()) != 5 {
		t.Errorf("tail printed more than was said:\n%s", tail.stdout.String())
	}
	if tail.stderr.String() != "" {
		t.Errorf("tail said on stderr: %q", tail.stderr.String())
	}
}

// tail ROOM... prints those rooms' events; @USER adds the private
// conversation with USER, @ every private message. Each filter keeps its
// own position.
func TestTailFilters(t *testing.T) {
	srv := chattest.Start(t)
	bob := srv.Login(t, "bob")
	carol := srv.Login(t, "carol")
	alice := newUser(t, srv.URL).login("alice")
	for _, room := range []string{"ops", "dev", "misc"} {
		alice.must("", "join", room)
		bob.Join(room)
	}
	alice.refused(1, "you are not a member of #nope: join it first with: chat join nope", "tail", "ops", "nope")

	tails := map[string]*bg{}
	for name, args := range map[string][]string{
		"ops":         {"ops"},
		"ops dev @":   {"#dev", "ops", "@"},
		"misc @carol": {"misc", "@carol"},
	} {
		state := filepath.Join(alice.home, strings.ReplaceAll(name, " ", "_")+".pos")
		tails[name] = alice.start(append([]string{"tail", "--state", state}, args...)...)
		waitFile(t, state)
	}
	bob.Say("ops", "to ops")
	bob.Say("dev", "to dev")
	bob.Say("misc", "to misc")
	bob.MustDo("POST", "/api/users/alice/messages", map[string]string{"text": "from bob"}, nil, 201)
	carol.MustDo("POST", "/api/users/alice/messages", map[string]string{"text": "from carol"}, nil, 201)
	bob.Say("ops", "the end")

	want := map[string][]string{
		"ops":         {"#ops bob: to ops", "#ops bob: the end"},
		"ops dev @":   {"#ops bob: to ops", "#dev bob: to dev", "@bob → you: from bob", "@carol → you: from carol", "#ops bob: the end"},
		"misc @carol": {"#misc bob: to misc", "@carol → you: from carol"},
	}
	for name, tail := range tails {
		sameLines(t, "tail "+name, untimed(t, tail.waitLines(len(want[name]))), want[name])
	}
	// Nothing more: the ops tail has seen "the end", after everything.
	for name, tail := range tails {
		tail.stop(syscall.SIGTERM)
		if got := len(tail.lines()); got != len(want[name]) {
			t.Errorf("tail %s printed %d lines, want %d:\n%s", name, got, len(want[name]), tail.stdout.String())
		}
	}
}

// tail --json prints one object per line: the event's data as the stream
// carries it, plus "event", its kind. --presence adds who comes online.
func TestTailJSON(t *testing.T) {
	srv := chattest.Start(t)
	bob := srv.Login(t, "bob")
	alice := newUser(t, srv.URL).login("alice")
	alice.must("", "join", "ops")
	state := filepath.Join(alice.home, "json.pos")
	tail := alice.start("tail", "--json", "--presence", "--state", state)
	waitFile(t, state)
	bob.Join("ops")
	bs := bob.Stream("")
	bs.Ready()
	sent := bob.Say("ops", "line\none <b>")

	lines := tail.waitLines(4)
	var events []map[string]string
	for _, l := range lines {
		var v map[string]string
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line %q is not a JSON object of strings: %v", l, err)
		}
		events = append(events, v)
	}
	// Alice's own presence comes first, in the stream's snapshot.
	kinds := []string{"presence", "join", "presence", "message"}
	for i, v := range events {
		if v["event"] != kinds[i] {
			t.Fatalf("events %v, want kinds %v", events, kinds)
		}
	}
	if events[2]["user"] != "bob" || events[2]["status"] != "online" {
		t.Errorf("presence %v, want bob online", events[2])
	}
	msg := events[3]
	if msg["id"] != sent.ID || msg["room"] != "ops" || msg["from"] != "bob" || msg["text"] != "line\none <b>" || msg["ts"] != sent.TS {
		t.Errorf("message %v, want the posted %+v", msg, sent)
	}
	if !strings.HasPrefix(lines[3], `{"event":"message","id":"`) {
		t.Errorf("line %q: want the stream's object with \"event\" first", lines[3])
	}
}

// A resume the server cannot fill prints a reset line saying what to do,
// then goes on live.
func TestTailReset(t *testing.T) {
	srv := chattest.Start(t)
	bob := srv.Login(t, "bob")
	alice := newUser(t, srv.URL).login("alice")
	alice.must("", "join", "ops")
	bob.Join("ops")
	state := filepath.Join(alice.home, "tail.pos")
	// A position the server never had: a database replaced under it.
	if err := writeFile(state, "999999\n"); err != nil {
		t.Fatal(err)
	}
	tail := alice.start("tail", "--state", state)
	lines := untimed(t, tail.waitLines(1))
	if !strings.HasPrefix(lines[0], "reset: ") || !strings.Contains(lines[0], "chat history ROOM") {
		t.Errorf("first line %q, want a reset that says to read history", lines[0])
	}
	// Bob's message must arrive: wait for the saved reset position first.
	chattest.Eventually(t, "the reset's position saved", func() bool {
		data, _ := readFile(state)
		return data != "999999\n" && data != ""
	})
	bob.Say("ops", "after the reset")
	sameLines(t, "after the reset", untimed(t, tail.waitLines(2))[1:], []string{"#ops bob: after the reset"})
}

// Across a server that is killed (-9) and started again on the same
// database: a running tail reconnects and misses nothing; a tail stopped
// while the server was down prints, when started again, exactly what it
// missed.
func TestTailAcrossServerRestart(t *testing.T) {
	bin := chattest.BuildServer(t)
	db := filepath.Join(t.TempDir(), "chat.db")
	p := chattest.StartProc(t, bin, db)
	addr := strings.TrimPrefix(p.URL, "http://")
	srv := p.Server()
	bob := srv.Login(t, "bob")
	alice := newUser(t, p.URL).login("alice")
	alice.must("", "join", "ops")
	bob.Join("ops")
	state := filepath.Join(alice.home, "tail.pos")

	tail := alice.start("tail", "--state", state, "ops")
	waitFile(t, state)
	bob.Say("ops", "before the crash")
	tail.waitLines(1)

	p.Kill()
	p = chattest.StartProc(t, bin, db, "--addr", addr)
	bob.Say("ops", "after the crash")
	lines := tail.waitLines(2)

	p.Kill()
	if code := tail.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("tail stopped while the server was down exited %d, want 0", code)
	}
	p = chattest.StartProc(t, bin, db, "--addr", addr)
	bob.Say("ops", "while no tail ran")
	tail2 := alice.start("tail", "--state", state, "ops")
	tail2.waitLines(1)
	bob.Say("ops", "live again")
	lines = append(lines, tail2.waitLines(2)...)

	sameLines(t, "tail across restarts", untimed(t, lines), []string{
		"#ops bob: before the crash",
		"#ops bob: after the crash",
		"#ops bob: while no tail ran",
		"#ops bob: live again",
	})
	tail2.stop(syscall.SIGTERM)
	if n := len(tail2.lines()); n != 2 {
		t.Errorf("the second tail printed %d lines, want 2:\n%s", n, tail2.stdout.String())
	}
	if !strings.Contains(tail.stderr.String(), "reconnecting in") {
		t.Errorf("the first tail's stderr %q does not say it reconnected", tail.stderr.String())
	}
}

// --state FILE in a directory that does not exist makes the directory
// (0700); one that cannot be made is refused at the start, before tail
// connects.
func TestTailStateDirectory(t *testing.T) {
	srv := chattest.Start(t)
	bob := srv.Login(t, "bob")
	alice := newUser(t, srv.URL).login("alice")
	alice.must("", "join", "ops")
	bob.Join("ops")

	dir := filepath.Join(alice.home, "new", "dir")
	state := filepath.Join(dir, "tail.pos")
	tail := alice.start("tail", "--state", state)
	waitFile(t, state)
	bob.Say("ops", "hello")
	sameLines(t, "tail", untimed(t, tail.waitLines(1)), []string{"#ops bob: hello"})
	if code := tail.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("tail exited %d, want 0; stderr %q", code, tail.stderr.String())
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the state's directory: %v, %v; want it made 0700", fi.Mode(), err)
	}

	// Below a file: no directory can be made there.
	if err := writeFile(filepath.Join(alice.home, "file"), "x"); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(alice.home, "file", "sub", "tail.pos")
	alice.refused(2, "--state "+bad+": cannot make its directory", "tail", "--state", bad)
}

// tail --presence across a server killed (-9) and started again: bob was
// online, and his stream died with the server; the new server's list
// after ready does not name him, and tail says he is offline once the
// list is over (here at the big room's count, which follows it).
func TestTailPresenceAcrossServerRestart(t *testing.T) {
	bin := chattest.BuildServer(t)
	db := filepath.Join(t.TempDir(), "chat.db")
	// ops (alice, bob) is small; big (alice, carol, dave) is large.
	p := chattest.StartProc(t, bin, db, "--large-room", "2")
	addr := strings.TrimPrefix(p.URL, "http://")
	srv := p.Server()
	bob, carol, dave := srv.Login(t, "bob"), srv.Login(t, "carol"), srv.Login(t, "dave")
	alice := newUser(t, p.URL).login("alice")
	alice.must("", "join", "ops")
	alice.must("", "join", "big")
	bob.Join("ops")
	carol.Join("big")
	dave.Join("big")

	tail := alice.start("tail", "--presence", "--state", filepath.Join(alice.home, "tail.pos"))
	bs := bob.Stream("")
	bs.Ready()
	has := func(lines []string, want string) bool {
		return slices.Contains(untimed(t, lines), want)
	}
	chattest.Eventually(t, "bob online and alice counted in big", func() bool {
		lines := tail.lines()
		return has(lines, "bob is online") && has(lines, "#big 3 members, 1 online")
	})
	before := len(tail.lines())

	p.Kill()
	chattest.StartProc(t, bin, db, "--addr", addr, "--large-room", "2")
	// The new stream's list, then big's count.
	var after []string
	chattest.Eventually(t, "big's count after the restart", func() bool {
		after = untimed(t, tail.lines()[before:])
		return slices.ContainsFunc(after, func(l string) bool { return strings.HasPrefix(l, "#big ") })
	})
	end := slices.IndexFunc(after, func(l string) bool { return strings.HasPrefix(l, "#big ") })
	if !slices.Contains(after[:end], "bob is offline") {
		t.Errorf("after the restart tail printed %q before big's count, want bob offline", after[:end+1])
	}
	if all := tail.lines(); has(all, "alice is offline") {
		t.Errorf("tail said its own user went offline:\n%s", strings.Join(all, "\n"))
	}
}
