//go:build unix

package main_test

import (
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/ssechat/ssechat/internal/chattest"
)

// readmeSection is README.md's "Scripts and bots": its fenced blocks and
// the inline code of its prose.
type readmeSection struct {
	blocks []readmeBlock
	spans  []string
}

type readmeBlock struct{ lang, text string }

var inlineCode = regexp.MustCompile("`([^`]+)`")

func scriptsAndBots(t *testing.T) readmeSection {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), "\n## Scripts and bots\n")
	if !ok {
		t.Fatal(`README.md has no "## Scripts and bots"`)
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	var sec readmeSection
	var prose strings.Builder
	var open *readmeBlock
	for _, line := range strings.Split(rest, "\n") {
		switch {
		case open == nil && strings.HasPrefix(line, "```"):
			open = &readmeBlock{lang: strings.TrimPrefix(line, "```")}
		case open != nil && line == "```":
			sec.blocks = append(sec.blocks, *open)
			open = nil
		case open != nil:
			open.text += line + "\n"
		default:
			prose.WriteString(line + " ")
		}
	}
	for _, m := range inlineCode.FindAllStringSubmatch(prose.String(), -1) {
		sec.spans = append(sec.spans, m[1])
	}
	if len(sec.blocks) != 3 || sec.blocks[0].lang != "sh" || sec.blocks[1].lang != "sh" || sec.blocks[2].lang != "" {
		t.Fatalf("Scripts and bots: want an install block, a two-terminal block and a sample output; got %+v", sec.blocks)
	}
	return sec
}

// span returns the section's one inline command that starts with prefix.
func (s readmeSection) span(t *testing.T, prefix string) string {
	t.Helper()
	var found []string
	for _, c := range s.spans {
		if strings.HasPrefix(c, prefix) {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		t.Fatalf("README.md Scripts and bots: %d inline commands starting %q, want 1: %q", len(found), prefix, found)
	}
	return found[0]
}

// terminalScripts splits the block at its "# Terminal N:" comments.
func terminalScripts(t *testing.T, text string) []string {
	t.Helper()
	var out []string
	for line := range strings.Lines(text) {
		if strings.HasPrefix(line, "# Terminal ") {
			out = append(out, "")
		}
		if len(out) == 0 {
			if strings.TrimSpace(line) != "" {
				t.Fatalf("README.md: %q before any # Terminal N:", line)
			}
			continue
		}
		out[len(out)-1] += line
	}
	return out
}

// TestReadmeScriptsAndBots runs what "Scripts and bots" tells a newcomer
// to type, verbatim, with bash: the install from the checkout (into a
// GOBIN of the test's), the two terminals against a server whose address
// CHAT_URL gives (the README's default is localhost:8080) with one HOME
// for both, as on one account; terminal 1 must show the sample output,
// times aside. Then the commands of the prose: Ctrl-C and the same tail
// again, tail --json, and tail -f app.log | chat say ops.
func TestReadmeScriptsAndBots(t *testing.T) {
	sec := scriptsAndBots(t)
	bin, home := t.TempDir(), t.TempDir()
	srv := chattest.Start(t)
	env := []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "HOME=" + home, "TZ=UTC", "CHAT_URL=" + srv.URL}
	shell := func(script string) *exec.Cmd {
		cmd := exec.Command("bash", "-c", script)
		cmd.Env, cmd.Dir = env, home
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		return cmd
	}
	run := func(name, script string) string {
		t.Helper()
		b := startBg(t, shell(script), []string{name})
		if code := b.exit(); code != 0 {
			t.Fatalf("%s exited %d:\n%s\nstdout: %s\nstderr: %s", name, code, script, b.stdout.String(), b.stderr.String())
		}
		return b.stdout.String()
	}
	positions := filepath.Join(home, ".local", "state", "ssechat", "tail", url.QueryEscape(srv.URL), "alice")

	install := exec.Command("bash", "-c", sec.blocks[0].text)
	install.Dir = repoRoot()
	install.Env = append(os.Environ(), "GOBIN="+bin)
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", sec.blocks[0].text, err, out)
	}

	terms := terminalScripts(t, sec.blocks[1].text)
	if len(terms) != 2 {
		t.Fatalf("README.md: %d terminals, want 2", len(terms))
	}
	t1 := startBg(t, shell(terms[0]), []string{"terminal 1"})
	waitFile(t, filepath.Join(positions, url.QueryEscape("#ops,@")))
	history := run("terminal 2", terms[1])
	sameLines(t, "terminal 2 (chat history -n 2 ops)", untimed(t, strings.Split(strings.TrimSuffix(history, "\n"), "\n")),
		[]string{"#ops bob: disk 91%", "#ops bob: load 7.2"})
	sample := untimed(t, strings.Split(strings.TrimSuffix(sec.blocks[2].text, "\n"), "\n"))
	sameLines(t, "terminal 1", untimed(t, t1.waitLines(len(sample))), sample)

	// Ctrl-C, and the same tail again: what came meanwhile, then live.
	restart := sec.span(t, "chat tail ops @")
	if code := t1.stop(syscall.SIGINT); code != 0 {
		t.Errorf("terminal 1 exited %d on Ctrl-C, want 0", code)
	}
	bob := "export XDG_CONFIG_HOME=$HOME/.config/bob\n"
	run("bob", bob+"chat say ops while you were away")
	again := startBg(t, shell(restart), []string{restart})
	sameLines(t, restart+", again", untimed(t, again.waitLines(1)), []string{"#ops bob: while you were away"})
	run("bob", bob+"chat say ops back live")
	sameLines(t, restart+", live", untimed(t, again.waitLines(2))[1:], []string{"#ops bob: back live"})

	// tail --json, and a log's lines as messages.
	jsonTail := sec.span(t, "chat tail --json ")
	j := startBg(t, shell(jsonTail), []string{jsonTail})
	waitFile(t, filepath.Join(positions, url.QueryEscape("#ops")))
	if err := os.WriteFile(filepath.Join(home, "app.log"), []byte("started\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logTail := sec.span(t, "tail -f app.log | ")
	startBg(t, shell(bob+logTail), []string{logTail})
	var texts []string
	chattest.Eventually(t, "the log's first line", func() bool { return len(j.lines()) >= 1 })
	f, err := os.OpenFile(filepath.Join(home, "app.log"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("disk full\n")
	f.Close()
	for _, l := range j.waitLines(2) {
		var e struct{ Event, Room, From, Text string }
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Event != "message" || e.Room != "ops" || e.From != "bob" {
			t.Errorf("%s printed %q, want a message of bob's in ops (%v)", jsonTail, l, err)
		}
		texts = append(texts, e.Text)
	}
	sameLines(t, logTail, texts, []string{"started", "disk full"})
}
