//go:build unix

package main_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssechat/ssechat/app"
	"github.com/ssechat/ssechat/internal/chattest"
	"github.com/ssechat/ssechat/limits"
)

// expectTexts reads s until the messages of kind with the given texts
// came, in that order, each once, with nothing else of that kind between.
func expectTexts(t *testing.T, s *chattest.Stream, kind string, texts ...string) []chattest.Event {
	t.Helper()
	var got []chattest.Event
	for len(got) < len(texts) {
		f := s.Next()
		if f.Kind != kind {
			continue
		}
		if want := texts[len(got)]; f.Event.Text != want {
			t.Fatalf("%s %d: %q, want %q (all so far: %v)", kind, len(got)+1, f.Event.Text, want, got)
		}
		got = append(got, f.Event)
	}
	return got
}

// say posts the words as one message, or each line of stdin as one, in
// order, once; empty lines are skipped; a line ending in CRLF loses the CR.
func TestSay(t *testing.T) {
	srv := chattest.Start(t)
	alice := srv.Login(t, "alice")
	alice.Join("ops")
	s := alice.Stream("")
	s.Ready()
	bob := newUser(t, srv.URL).login("bob")
	bob.must("", "join", "ops")

	if out := bob.must("", "say", "ops", "deploy", "42", "--finished"); out != "" {
		t.Errorf("say printed %q; posting says nothing", out)
	}
	bob.must("one\n\n  \ntwo\r\n  three with spaces  \nlast without newline", "say", "#ops")
	got := expectTexts(t, s, "message", "deploy 42 --finished", "one", "two", "  three with spaces  ", "last without newline")
	for _, e := range got {
		if e.From != "bob" || e.Room != "ops" {
			t.Errorf("message %+v, want from bob in ops", e)
		}
	}
	s.ExpectNone(200*time.Millisecond, "message")
}

// A line the server refuses for what it is (too long) is said on stderr
// with its number, the lines after it are posted, and the exit status is 1.
func TestSayReportsRefusedLines(t *testing.T) {
	srv := chattest.Start(t)
	alice := srv.Login(t, "alice")
	alice.Join("ops")
	s := alice.Stream("")
	s.Ready()
	bob := newUser(t, srv.URL).login("bob")
	bob.must("", "join", "ops")

	r := bob.run("before\n"+strings.Repeat("x", 4001)+"\n@nobody psst\nafter\n", "say", "ops")
	if r.code != 1 {
		t.Errorf("say with a refused line: %v, want exit 1", r)
	}
	for _, want := range []string{"chat: line 2 not posted: ", "(400)", "chat: line 3 not posted: ", "(404)", "chat: 2 of the lines were not posted"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q does not say %q", r.stderr, want)
		}
	}
	expectTexts(t, s, "message", "before", "after")
}

// A burst of lines beyond the server's message rate is posted all the
// same, in order, each once: say waits as long as a 429 says.
func TestSayWaitsOutTheRateLimit(t *testing.T) {
	srv := chattest.Start(t, func(cfg *app.Config) {
		cfg.HTTP.Limits = limits.Config{MessageRate: 20, MessageBurst: 3}
	})
	alice := srv.Login(t, "alice")
	alice.Join("ops")
	s := alice.Stream("")
	s.Ready()
	bob := newUser(t, srv.URL).login("bob")
	bob.must("", "join", "ops")

	var lines []string
	for i := range 15 {
		lines = append(lines, fmt.Sprintf("log line %d", i))
	}
	bob.must(strings.Join(lines, "\n"), "say", "ops")
	expectTexts(t, s, "message", lines...)
	s.ExpectNone(200*time.Millisecond, "message")
}

// say from stdin refuses at once, before reading, a room one is not in.
func TestSayNotAMember(t *testing.T) {
	srv := chattest.Start(t)
	srv.Login(t, "alice").Join("ops")
	bob := newUser(t, srv.URL).login("bob")
	bob.refused(1, "you are not a member of #ops: join it first with: chat join ops", "say", "ops")
	bob.refused(1, `you are not a member of "ops" (403): join it first with: chat join ops`, "say", "ops", "hello")
}

// dm sends privately: the words, or each line of stdin.
func TestDM(t *testing.T) {
	srv := chattest.Start(t)
	alice := srv.Login(t, "alice")
	s := alice.Stream("")
	s.Ready()
	bob := newUser(t, srv.URL).login("bob")
	bob.must("", "dm", "alice", "are", "you", "there?")
	bob.must("line one\nline two\n", "dm", "@alice")
	for _, e := range expectTexts(t, s, "private", "are you there?", "line one", "line two") {
		if e.From != "bob" || e.To != "alice" {
			t.Errorf("private %+v, want from bob to alice", e)
		}
	}
	bob.refused(1, "(404)", "dm", "nobody", "hello?")
}

// Lines written while the server is down (killed -9 and started again on
// the same database) are posted once it is back, in order, each once; a
// server that stays away longer than CHAT_RETRY_TIMEOUT ends say with
// status 4, saying which line may not have been posted.
func TestSayThroughAServerRestart(t *testing.T) {
	bin := chattest.BuildServer(t)
	db := filepath.Join(t.TempDir(), "chat.db")
	p := chattest.StartProc(t, bin, db)
	addr := strings.TrimPrefix(p.URL, "http://")
	alice := p.Server().Login(t, "alice")
	alice.Join("ops")
	bob := newUser(t, p.URL, "CHAT_RETRY_TIMEOUT=20s").login("bob")
	bob.must("", "join", "ops")
	texts := func() []string {
		var page struct{ Messages []chattest.Event }
		alice.On(p.Server()).MustDo("GET", "/api/rooms/ops/messages", nil, &page, 200)
		var out []string
		for _, e := range page.Messages {
			out = append(out, e.Text)
		}
		return out
	}

	cmd := bob.command("say", "ops")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	say := startBg(t, cmd, []string{"say ops"})
	fmt.Fprintln(stdin, "one")
	chattest.Eventually(t, "line one posted", func() bool { return len(texts()) == 1 })
	p.Kill()
	fmt.Fprintln(stdin, "two")
	fmt.Fprintln(stdin, "three")
	p = chattest.StartProc(t, bin, db, "--addr", addr)
	stdin.Close()
	if code := say.exit(); code != 0 {
		t.Fatalf("say through a restart exited %d: %s", code, say.stderr.String())
	}
	sameLines(t, "the room's history", texts(), []string{"one", "two", "three"})

	// Down for good.
	cmd = bob.with("CHAT_RETRY_TIMEOUT=300ms").command("say", "ops")
	if stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	say = startBg(t, cmd, []string{"say ops"})
	fmt.Fprintln(stdin, "four")
	chattest.Eventually(t, "line four posted", func() bool { return len(texts()) == 4 })
	p.Kill()
	fmt.Fprintln(stdin, "five")
	fmt.Fprintln(stdin, "six")
	if code := say.exit(); code != 4 {
		t.Errorf("say with the server gone exited %d, want 4", code)
	}
	if want := "chat: line 2 may not have been posted, nor any after it: cannot reach the server at " + p.URL; !strings.HasPrefix(say.stderr.String(), want) {
		t.Errorf("say with the server gone said %q, want %q…", say.stderr.String(), want)
	}
}
