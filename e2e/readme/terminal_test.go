//go:build unix

package readme_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ssechat/ssechat/internal/pgtest"
)

// stepTimeout bounds each step of a walkthrough: a command, or an event
// showing up in a terminal.
const stepTimeout = 20 * time.Second

// needTools skips the test when a program the README's commands use is
// missing (or fails it under CHAT_REQUIRE_SERVICES=1).
func needTools(t testing.TB, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			pgtest.Missing(t, "%s is not on the PATH", name)
		}
	}
}

var servingLine = regexp.MustCompile(`msg=serving addr=(\S+)`)

// startServer runs the built binary as the README's "go run ." would, but
// on a free loopback port, with a fresh SQLite file in dir and cheap
// password hashing, and returns the host:port it serves on.
func startServer(t testing.TB, dir string) string {
	t.Helper()
	bin := serverBinary(t)
	srv := startTerm(t, "ssechat", dir, fmt.Sprintf("exec %s --addr 127.0.0.1:0 --db %s --password-cost 4 --metrics-addr '' 2>&1",
		shellQuote(bin), shellQuote(filepath.Join(dir, "chat.db"))))
	var addr string
	srv.waitStdout(stepTimeout, "msg=serving line", func(out string) bool {
		if m := servingLine.FindStringSubmatch(out); m != nil {
			addr = m[1]
		}
		return addr != ""
	})
	return addr
}

// TestChatFromATerminal runs "Chat from a terminal": terminal 1 (alice
// logs in, joins, listens with curl -N), then terminal 2 (bob joins and
// talks), each with bash, verbatim but for the server's address. Terminal
// 1 must show exactly the README's sample output (times aside: they must
// only have its form). Then alice's stream drops and the README's resume
// command must replay what she missed, then go live.
func TestChatFromATerminal(t *testing.T) {
	needTools(t, "bash", "curl", "jq")
	sec := findSection(t, readme(t), "Chat from a terminal")
	terms := terminals(t, sec.onlyBlock(t, "sh"))
	sample := parseFrames(sec.onlyBlock(t, "").text)
	resume := sec.codeSpan(t, "curl -N ")
	if len(sample) == 0 {
		t.Fatal("README.md: the sample output of terminal 1 holds no event")
	}

	dir := t.TempDir()
	addr := startServer(t, dir)
	local := func(script string) string { return replace(t, script, "localhost:8080", addr) }
	aliceVars := filepath.Join(dir, "alice.vars")
	bobVars := filepath.Join(dir, "bob.vars")

	// Terminal 1 first, as a reader would: bob's events must find her
	// stream open.
	t1 := startTerm(t, "terminal 1", dir, saveVar(t, local(terms[1]), "A", aliceVars))
	t1.waitStdout(stepTimeout, "ready event", func(out string) bool {
		_, stream := joinAnswer(out)
		return len(parseFrames(stream)) > 0
	})
	out2 := run(t, "terminal 2", dir, saveVar(t, local(terms[2]), "B", bobVars), stepTimeout)

	// Terminal 1 shows the join's answer, then the stream. Wait for as
	// many events as the sample shows; then there must be no other.
	var shown []frame
	t1.waitStdout(stepTimeout, fmt.Sprintf("the %d events of the README's sample", len(sample)), func(out string) bool {
		_, stream := joinAnswer(out)
		shown = dedupe(parseFrames(stream))
		return len(shown) >= len(sample)
	})
	answer, _ := joinAnswer(t1.stdout.String())
	if !strings.Contains(answer, `"room":"lobby"`) {
		t.Errorf("terminal 1: the join answered %q, want the lobby's members", answer)
	}
	sameEvents(t, "terminal 1", shown, sample)

	// Terminal 2's answers: the three events it posted, as the stream
	// carries them, and the history of the room (its messages only).
	answers := jsonValues(t, "terminal 2", out2)
	if len(answers) != 5 {
		t.Fatalf("terminal 2 printed %d JSON answers, want 5 (join, 3 posts, history):\n%s", len(answers), out2)
	}
	posted := answers[1:4]
	var carried []string
	for _, f := range shown {
		if f.logged() && f.event != "join" {
			carried = append(carried, f.data)
		}
	}
	if len(carried) != len(posted) {
		t.Errorf("terminal 1 shows %d messages, terminal 2 posted %d", len(carried), len(posted))
	}
	for i := range min(len(carried), len(posted)) {
		if posted[i] != carried[i] {
			t.Errorf("post %d answered %s, but the stream carried %s", i+1, posted[i], carried[i])
		}
	}
	var history struct {
		Messages []json.RawMessage `json:"messages"`
	}
	if err := json.Unmarshal([]byte(answers[4]), &history); err != nil || len(history.Messages) != 1 || compact(history.Messages[0]) != posted[0] {
		t.Errorf("history answered %s, want the one room message %s", answers[4], posted[0])
	}

	// The stream drops; the README's resume command, in the same terminal
	// (alice's $A), gets what came after the id it names: the sample's
	// logged events after it, then ready and the presence snapshot, then
	// live events.
	t1.kill()
	m := regexp.MustCompile(`last_event_id=(\d+)`).FindStringSubmatch(resume)
	if m == nil {
		t.Fatalf("README.md: the resume command %q names no last_event_id", resume)
	}
	after, _ := strconv.ParseInt(m[1], 10, 64)
	var missed []frame
	for _, f := range sample {
		if id, _ := strconv.ParseInt(f.id, 10, 64); f.logged() && id > after {
			missed = append(missed, f)
		}
	}
	head := after
	if len(missed) > 0 {
		head, _ = strconv.ParseInt(missed[len(missed)-1].id, 10, 64)
	}
	resumed := startTerm(t, "terminal 1, resuming", dir, "source "+shellQuote(aliceVars)+"\n"+local(resume))
	resumed.waitStdout(stepTimeout, "ready event", func(out string) bool {
		return strings.Contains(out, "event: ready\n")
	})
	// bob says one more thing, as in terminal 2: it must arrive live.
	var hello string
	for _, line := range commandLines(terms[2]) {
		if strings.Contains(line, `"text":"hello lobby"`) {
			hello = line
		}
	}
	if hello == "" {
		t.Fatal(`README.md: terminal 2 no longer posts "hello lobby"`)
	}
	run(t, "terminal 2, again", dir, "source "+shellQuote(bobVars)+"\n"+
		local(replace(t, hello, "hello lobby", "back live")), stepTimeout)
	var got []frame
	resumed.waitStdout(stepTimeout, `"back live" message`, func(out string) bool {
		got = dedupe(parseFrames(out))
		return len(got) > 0 && strings.Contains(got[len(got)-1].data, `"text":"back live"`)
	})
	want := append([]frame(nil), missed...)
	want = append(want,
		sseFrame(head, "ready", fmt.Sprintf(`{"id":"%d","user":"alice"}`, head)),
		sseFrame(head, "presence", fmt.Sprintf(`{"id":"%d","user":"alice","status":"online","ts":"%s"}`, head, anyTS)),
		sseFrame(head+1, "message", fmt.Sprintf(`{"id":"%d","room":"lobby","from":"bob","text":"back live","ts":"%s"}`, head+1, anyTS)),
	)
	sameEvents(t, "the resumed stream", got, want)
}

// TestLoginFailureAsWritten runs terminal 1 of "Chat from a terminal" with
// a wrong password for a name already taken. As written, the login line
// fails loudly: jq finds no token, prints the server's error on stderr and
// leaves $A empty (never the error answer, which a script would then send
// as its token); the join and the stream are refused with 401. The first
// login of a free name registers it, as the README says: the second login
// with the same password succeeds.
func TestLoginFailureAsWritten(t *testing.T) {
	needTools(t, "bash", "curl", "jq")
	sec := findSection(t, readme(t), "Chat from a terminal")
	t1 := terminals(t, sec.onlyBlock(t, "sh"))[1]
	dir := t.TempDir()
	addr := startServer(t, dir)
	t1 = replace(t, t1, "localhost:8080", addr)
	vars := filepath.Join(dir, "alice.vars")
	saved := func() string {
		t.Helper()
		return strings.TrimSpace(run(t, "$A", dir, "source "+shellQuote(vars)+"\nprintf '%s' \"$A\"", stepTimeout))
	}

	// The free name: registered, and its stream opens.
	first := startTerm(t, "terminal 1, registering", dir, saveVar(t, t1, "A", vars))
	first.waitStdout(stepTimeout, "ready event", func(out string) bool { return strings.Contains(out, "event: ready\n") })
	first.kill()
	token := saved()
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{16,}$`).MatchString(token) {
		t.Fatalf("the first login left $A = %q, want a token", token)
	}
	again := startTerm(t, "terminal 1, again", dir, saveVar(t, t1, "A", vars))
	again.waitStdout(stepTimeout, "ready event", func(out string) bool { return strings.Contains(out, "event: ready\n") })
	again.kill()
	if tok := saved(); !regexp.MustCompile(`^[A-Za-z0-9_-]{16,}$`).MatchString(tok) || tok == token {
		t.Errorf("the second login with the same password left $A = %q, want a new token", tok)
	}

	// The wrong password.
	wrong := replace(t, t1, `"password":"secret-a"`, `"password":"not-secret-a"`)
	tm := startTerm(t, "terminal 1, wrong password", dir, saveVar(t, wrong, "A", vars))
	if err := tm.wait(stepTimeout); err != nil {
		t.Fatalf("terminal 1 with a wrong password: %v", err)
	}
	if a := saved(); a != "" {
		t.Errorf("after a wrong password $A = %q, want it empty", a)
	}
	if errOut := tm.stderr.String(); !strings.Contains(errOut, `wrong password for "alice"`) {
		t.Errorf("with a wrong password terminal 1's stderr is %q, want the server's reason", errOut)
	}
	if out := tm.stdout.String(); strings.Count(out, `{"error":`) != 2 || strings.Contains(out, "event:") {
		t.Errorf("with a wrong password terminal 1 printed %q, want the join and the stream refused", out)
	}
}

// anyTS stands for the time of an event the test expects: sameEvents
// compares times only by their form.
const anyTS = "2026-01-01T00:00:00.000Z"

// sseFrame is an event as the server writes it: id, event, data.
func sseFrame(id int64, event, data string) frame {
	s := strconv.FormatInt(id, 10)
	return frame{id: s, event: event, data: data, lines: []string{"id: " + s, "event: " + event, "data: " + data}}
}

// sameEvents compares events line by line, each "ts" only by its form.
func sameEvents(t testing.TB, where string, got, want []frame) {
	t.Helper()
	var g, w []string
	for _, f := range got {
		s, err := withoutTimes(f)
		if err != nil {
			t.Errorf("%s: %v", where, err)
		}
		g = append(g, s)
	}
	for _, f := range want {
		s, err := withoutTimes(f)
		if err != nil {
			t.Errorf("README.md sample: %v", err)
		}
		w = append(w, s)
	}
	if strings.Join(g, "\n\n") != strings.Join(w, "\n\n") {
		t.Errorf("%s shows (times as TS):\n%s\n\nwant:\n%s", where, strings.Join(g, "\n\n"), strings.Join(w, "\n\n"))
	}
}

// joinAnswer splits terminal 1's output into the join's answer, which
// curl -s prints without a newline, and the stream after it.
func joinAnswer(out string) (answer, stream string) {
	dec := json.NewDecoder(strings.NewReader(out))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		return "", ""
	}
	return string(v), out[dec.InputOffset():]
}

// jsonValues reads the JSON answers a terminal printed back to back, each
// compacted.
func jsonValues(t testing.TB, where, out string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	var vals []string
	for {
		var v json.RawMessage
		if err := dec.Decode(&v); err == io.EOF {
			return vals
		} else if err != nil {
			t.Fatalf("%s: %v in its output:\n%s", where, err, out)
		}
		vals = append(vals, compact(v))
	}
}

func compact(v json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Compact(&b, v); err != nil {
		return string(v)
	}
	return b.String()
}
