//go:build unix

package readme_test

import (
	"encoding/json"
	"errors"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// installTimeout bounds the README's go install, which may build the
// command from a cold cache.
const installTimeout = 5 * time.Minute

// TestScriptsAndBots runs what "Scripts and bots" tells a newcomer to
// type, verbatim, with bash: the install from the checkout (into a GOBIN
// of the test's, which the install's own binary then runs from), the two
// terminals against the built server on a free port, whose address
// CHAT_URL gives (the README's default is localhost:8080), with one HOME
// for both, as on one account; terminal 1 must show the sample output and
// terminal 2 the history, times aside. Then the commands of the prose:
// Ctrl-C and the same tail again, which must print exactly what came
// meanwhile and then go on live; tail --json; and tail -f app.log | chat
// say ops.
func TestScriptsAndBots(t *testing.T) {
	needTools(t, "bash", "go", "tail")
	sec := findSection(t, readme(t), "Scripts and bots")
	var langs []string
	for _, b := range sec.blocks {
		langs = append(langs, "```"+b.lang)
	}
	if !slices.Equal(langs, []string{"```sh", "```sh", "```"}) {
		t.Fatalf("README.md Scripts and bots: blocks %q, want an install block, a two-terminal block and a sample output", langs)
	}
	installScript, terms, sample := sec.blocks[0].text, terminals(t, sec.blocks[1]), sec.blocks[2].text
	if len(terms) != 2 || terms[1] == "" || terms[2] == "" {
		t.Fatalf("README.md Scripts and bots: terminals %v, want 1 and 2", slices.Sorted(maps.Keys(terms)))
	}
	restart := sec.codeSpan(t, "chat tail ops @")
	jsonTail := sec.codeSpan(t, "chat tail --json ")
	logTail := sec.codeSpan(t, "tail -f app.log | ")

	bin, home := t.TempDir(), t.TempDir()
	run(t, "the install", repoRoot(), installScript, installTimeout, "GOBIN="+bin)
	if _, err := os.Stat(filepath.Join(bin, "chat")); err != nil {
		t.Fatalf("the install left no chat in GOBIN: %v", err)
	}
	serverURL := "http://" + startServer(t, t.TempDir())
	// The variables chat reads are the README's or cleared (empty is
	// unset to chat), so that the environment the test runs in does not
	// leak in: sessions and positions go under HOME.
	env := []string{
		"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + home,
		"TZ=UTC",
		"CHAT_URL=" + serverURL,
		"XDG_CONFIG_HOME=", "XDG_STATE_HOME=", "CHAT_TOKEN=", "CHAT_PASSWORD=", "CHAT_RETRY_TIMEOUT=",
	}
	shell := func(name, script string) *term { return startTerm(t, name, home, script, env...) }
	bob := func(script string) string {
		return run(t, "bob: "+script, home, "export XDG_CONFIG_HOME=$HOME/.config/bob\n"+script, stepTimeout, env...)
	}
	positions := filepath.Join(home, ".local", "state", "ssechat", "tail", url.QueryEscape(serverURL), "alice")

	// Terminal 1 first, as a reader would: its tail must be subscribed
	// (it has saved its first position) before bob talks.
	t1 := shell("terminal 1", terms[1])
	waitPosition(t, t1, filepath.Join(positions, url.QueryEscape("#ops,@")))
	history := run(t, "terminal 2", home, terms[2], stepTimeout, env...)
	sameLines(t, "terminal 2 (chat history -n 2 ops)", untimed(t, strings.Split(strings.TrimSuffix(history, "\n"), "\n")),
		[]string{"#ops bob: disk 91%", "#ops bob: load 7.2"})
	want := untimed(t, strings.Split(strings.TrimSuffix(sample, "\n"), "\n"))
	sameLines(t, "terminal 1", untimed(t, waitLines(t1, len(want))), want)

	// Ctrl-C, and the same tail again: what came meanwhile, then live.
	t1.signal(syscall.SIGINT)
	if err := t1.wait(stepTimeout); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("terminal 1 on Ctrl-C: %v", err)
		}
		t.Errorf("terminal 1 exited %d on Ctrl-C, want 0", exit.ExitCode())
	}
	bob("chat say ops while you were away")
	again := shell(restart, restart)
	sameLines(t, restart+", again", untimed(t, waitLines(again, 1)), []string{"#ops bob: while you were away"})
	bob("chat say ops back live")
	sameLines(t, restart+", live", untimed(t, waitLines(again, 2))[1:], []string{"#ops bob: back live"})

	// tail --json, and a log's lines as messages.
	j := shell(jsonTail, jsonTail)
	waitPosition(t, j, filepath.Join(positions, url.QueryEscape("#ops")))
	appLog := filepath.Join(home, "app.log")
	if err := os.WriteFile(appLog, []byte("started\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shell(logTail, "export XDG_CONFIG_HOME=$HOME/.config/bob\n"+logTail)
	waitLines(j, 1)
	f, err := os.OpenFile(appLog, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("disk full\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, l := range waitLines(j, 2) {
		var e struct{ Event, Room, From, Text string }
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Event != "message" || e.Room != "ops" || e.From != "bob" {
			t.Errorf("%s printed %q, want a message of bob's in ops (%v)", jsonTail, l, err)
		}
		texts = append(texts, e.Text)
	}
	sameLines(t, logTail, texts, []string{"started", "disk full"})
}

// waitPosition waits until the tail in tm has saved its position at path:
// it is subscribed, and sees what comes next.
func waitPosition(t testing.TB, tm *term, path string) {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	for {
		ended := tm.exited()
		if _, err := os.Stat(path); err == nil {
			return
		}
		switch {
		case ended:
			t.Fatalf("%s ended (%v) before saving its position in %s", tm.name, tm.err, path)
		case time.Now().After(deadline):
			t.Fatalf("%s: no position in %s within %v", tm.name, path, stepTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLines waits until the terminal printed at least n whole lines and
// returns them all.
func waitLines(tm *term, n int) []string {
	tm.t.Helper()
	var lines []string
	tm.waitStdout(stepTimeout, strconv.Itoa(n)+" lines", func(out string) bool {
		lines = wholeLines(out)
		return len(lines) >= n
	})
	return lines
}

// wholeLines are the lines of out that have ended.
func wholeLines(out string) []string {
	if i := strings.LastIndexByte(out, '\n'); i >= 0 {
		return strings.Split(out[:i], "\n")
	}
	return nil
}

var clock = regexp.MustCompile(`^\d\d:\d\d:\d\d `)

// untimed drops the time each line of chat's starts with, failing the
// test if one has none.
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

// sameLines fails the test unless got and want are the same lines.
func sameLines(t testing.TB, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s printed:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
