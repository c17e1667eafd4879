//go:build unix

package readme_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ssechat/ssechat/internal/chattest"
)

// term is one terminal of a walkthrough: bash running the README's
// commands in a process group of its own, its output kept. The test's end
// kills the group if it still runs, and prints the script and its output
// when the test failed.
type term struct {
	t      testing.TB
	name   string
	script string
	cmd    *exec.Cmd
	stdout chattest.Buffer
	stderr chattest.Buffer
	done   chan struct{} // closed once bash has been reaped
	err    error         // Wait's; read after done
}

// startTerm runs script with bash -c in dir, with env added to the test's
// environment.
func startTerm(t testing.TB, name, dir, script string, env ...string) *term {
	t.Helper()
	tm := &term{t: t, name: name, script: script, done: make(chan struct{})}
	tm.cmd = exec.Command("bash", "-c", script)
	tm.cmd.Dir = dir
	tm.cmd.Env = append(os.Environ(), env...)
	tm.cmd.Stdout, tm.cmd.Stderr = &tm.stdout, &tm.stderr
	tm.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A program that left the group (deploy/cluster.sh puts its jobs in
	// groups of their own) may hold the output pipe after bash ends.
	tm.cmd.WaitDelay = 5 * time.Second
	if err := tm.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() {
		tm.err = tm.cmd.Wait()
		close(tm.done)
	}()
	t.Cleanup(func() {
		tm.kill()
		if t.Failed() {
			t.Logf("%s ran:\n%s\n--- its stdout:\n%s\n--- its stderr:\n%s", name, script, tm.stdout.String(), tm.stderr.String())
		}
	})
	return tm
}

// run runs script to its end within timeout and returns its stdout; it
// fails the test if bash fails or takes longer.
func run(t testing.TB, name, dir, script string, timeout time.Duration, env ...string) string {
	t.Helper()
	tm := startTerm(t, name, dir, script, env...)
	if err := tm.wait(timeout); err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", name, err, tm.stdout.String(), tm.stderr.String())
	}
	return tm.stdout.String()
}

// exited tells whether bash has ended.
func (tm *term) exited() bool {
	select {
	case <-tm.done:
		return true
	default:
		return false
	}
}

// wait waits up to timeout for bash to end and returns Wait's error.
func (tm *term) wait(timeout time.Duration) error {
	select {
	case <-tm.done:
		return tm.err
	case <-time.After(timeout):
		return fmt.Errorf("still running after %v", timeout)
	}
}

// signal sends sig to the terminal's process group, as a key press in a
// real terminal reaches its foreground job.
func (tm *term) signal(sig syscall.Signal) {
	if !tm.exited() {
		_ = syscall.Kill(-tm.cmd.Process.Pid, sig)
	}
}

// kill ends the whole process group (curl included) and reaps bash.
func (tm *term) kill() {
	tm.signal(syscall.SIGKILL)
	if err := tm.wait(10 * time.Second); err != nil && !tm.exited() {
		tm.t.Errorf("%s: %v after SIGKILL", tm.name, err)
	}
}

// waitStdout polls until cond holds for the terminal's stdout, and fails
// the test when timeout passes first or when bash ends without it.
func (tm *term) waitStdout(timeout time.Duration, what string, cond func(stdout string) bool) {
	tm.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ended := tm.exited() // before reading: output is complete once it has ended
		if cond(tm.stdout.String()) {
			return
		}
		switch {
		case ended:
			tm.t.Fatalf("%s ended (%v) before %s", tm.name, tm.err, what)
		case time.Now().After(deadline):
			tm.t.Fatalf("%s: no %s within %v", tm.name, what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor polls cond until it holds, and fails the test when timeout
// passes first.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// frame is one Server-Sent Event as it crossed the wire.
type frame struct {
	id, event, data string
	lines           []string // its field lines in order, comments left out
}

func (f frame) String() string { return strings.Join(f.lines, "\n") }

// logged tells whether the event is in the log (it has an id of its own,
// replayed on resume), as opposed to live state and stream notices.
func (f frame) logged() bool {
	switch f.event {
	case "message", "private", "join", "leave":
		return true
	}
	return false
}

// parseFrames reads the events of an SSE text: each ends with a blank
// line; comment lines (heartbeats) are left out; an unfinished last event
// is dropped, as a client would.
func parseFrames(text string) []frame {
	var (
		out []frame
		cur frame
	)
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSuffix(line, "\r")
		switch {
		case line == "":
			if len(cur.lines) > 0 {
				out = append(out, cur)
			}
			cur = frame{}
			continue
		case strings.HasPrefix(line, ":"):
			continue
		}
		cur.lines = append(cur.lines, line)
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			cur.id = value
		case "event":
			cur.event = value
		case "data":
			cur.data = value
		}
	}
	return out
}

var (
	tsField   = regexp.MustCompile(`"ts":"([^"]*)"`)
	rfc3339ms = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
)

// withoutTimes returns the frame's text with every "ts" value replaced by
// TS, and an error if one is not RFC 3339 in UTC with milliseconds (what
// openapi.yaml promises and the README shows).
func withoutTimes(f frame) (string, error) {
	var bad error
	s := tsField.ReplaceAllStringFunc(f.String(), func(m string) string {
		if ts := tsField.FindStringSubmatch(m)[1]; !rfc3339ms.MatchString(ts) {
			bad = errors.Join(bad, fmt.Errorf("ts %q is not like 2026-11-25T19:30:20.105Z", ts))
		}
		return `"ts":"TS"`
	})
	return s, bad
}

// dedupe drops an event equal to the one before it (times aside). Only
// presence and members events can repeat like that: the live notice that
// a user came online may cross the snapshot that already says so
// (broker.goLive), which the API allows (openapi.yaml: "Do not
// de-duplicate them by id").
func dedupe(frames []frame) []frame {
	var out []frame
	prev := ""
	for _, f := range frames {
		s, _ := withoutTimes(f)
		if s == prev && !f.logged() {
			continue
		}
		out, prev = append(out, f), s
	}
	return out
}
