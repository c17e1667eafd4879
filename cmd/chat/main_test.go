//go:build unix

package main_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ssechat/ssechat/internal/chattest"
)

// The tests run the built chat as a script or a person would, against a
// real server: in-process (chattest.Start), or the built binary where it
// must die and come back.

// chatBin is the chat binary, built once for the package by TestMain.
var chatBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "chat-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	chatBin = filepath.Join(dir, "chat")
	build := exec.Command("go", "build", "-o", chatBin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// user is one person (or script) with chat: a home of their own, so their
// session and positions are theirs, on one server.
type user struct {
	t    testing.TB
	home string
	env  []string
}

// newUser is a user of the server at url with an empty home. extra
// environment variables come last and win.
func newUser(t testing.TB, url string, extra ...string) *user {
	t.Helper()
	home := t.TempDir()
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
		"XDG_STATE_HOME=" + filepath.Join(home, "state"),
		"TZ=UTC",
		"CHAT_URL=" + url,
		"CHAT_RETRY_TIMEOUT=5s",
	}
	return &user{t: t, home: home, env: append(env, extra...)}
}

// with returns the same user with more environment variables.
func (u *user) with(vars ...string) *user {
	v := *u
	v.env = append(append([]string(nil), u.env...), vars...)
	return &v
}

// result is what a run of chat left.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

// command is chat with args, as u, in its own session (no controlling
// terminal, as under cron or CI, so that login cannot ask).
func (u *user) command(args ...string) *exec.Cmd {
	cmd := exec.Command(chatBin, args...)
	cmd.Env = u.env
	cmd.Dir = u.home
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return cmd
}

// run runs chat to its end with stdin, within chattest.Timeout.
func (u *user) run(stdin string, args ...string) result {
	u.t.Helper()
	cmd := u.command(args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		u.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(chattest.Timeout):
		_ = cmd.Process.Kill()
		<-done
		u.t.Fatalf("chat %s: still running after %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), chattest.Timeout, &stdout, &stderr)
	}
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		u.t.Fatalf("chat %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// must runs chat and fails the test unless it exits 0; it returns stdout.
func (u *user) must(stdin string, args ...string) string {
	u.t.Helper()
	r := u.run(stdin, args...)
	if r.code != 0 {
		u.t.Fatalf("chat %s: %v", strings.Join(args, " "), r)
	}
	return r.stdout
}

// refused runs chat and checks its exit status and that stderr says
// what is expected, on one line starting "chat: ".
func (u *user) refused(code int, want string, args ...string) result {
	u.t.Helper()
	r := u.run("", args...)
	if r.code != code || !strings.Contains(r.stderr, want) || !strings.HasPrefix(r.stderr, "chat: ") {
		u.t.Errorf("chat %s: %v; want exit %d and stderr with %q", strings.Join(args, " "), r, code, want)
	}
	if r.stdout != "" && code != 2 {
		u.t.Errorf("chat %s printed %q on stdout; errors go to stderr", strings.Join(args, " "), r.stdout)
	}
	return r
}

// login logs u in as name with chattest's password for it, so that
// chattest's clients can be the same user.
func (u *user) login(name string) *user {
	u.t.Helper()
	u.with("CHAT_PASSWORD=pw-"+name).must("", "login", name)
	return u
}

// bg is chat running in the background: tail.
type bg struct {
	t      testing.TB
	args   []string
	cmd    *exec.Cmd
	stdout chattest.Buffer
	stderr chattest.Buffer
	done   chan struct{}
	err    error // Wait's, once done is closed
}

// start runs chat with args as u in the background.
func (u *user) start(args ...string) *bg {
	u.t.Helper()
	return startBg(u.t, u.command(args...), args)
}

// startBg starts cmd, which is chat with args (for messages), and kills
// it, if still running, when the test ends.
func startBg(t testing.TB, cmd *exec.Cmd, args []string) *bg {
	t.Helper()
	b := &bg{t: t, args: args, cmd: cmd, done: make(chan struct{})}
	b.cmd.Stdout, b.cmd.Stderr = &b.stdout, &b.stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		b.err = b.cmd.Wait()
		close(b.done)
	}()
	t.Cleanup(func() {
		b.kill()
		if t.Failed() {
			t.Logf("chat %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), b.stdout.String(), b.stderr.String())
		}
	})
	return b
}

// lines are the lines it printed so far, whole ones only.
func (b *bg) lines() []string {
	out := b.stdout.String()
	if i := strings.LastIndexByte(out, '\n'); i >= 0 {
		return strings.Split(out[:i], "\n")
	}
	return nil
}

// waitLines waits until it printed at least n lines and returns them.
func (b *bg) waitLines(n int) []string {
	b.t.Helper()
	deadline := time.Now().Add(chattest.Timeout)
	for {
		select {
		case <-b.done:
			if l := b.lines(); len(l) >= n {
				return l
			}
			b.t.Fatalf("chat %s exited (%v) after %d lines, want %d:\n%s\nstderr: %s", strings.Join(b.args, " "), b.err, len(b.lines()), n, b.stdout.String(), b.stderr.String())
		default:
		}
		if l := b.lines(); len(l) >= n {
			return l
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("chat %s: %d lines after %v, want %d:\n%s\nstderr: %s", strings.Join(b.args, " "), len(b.lines()), chattest.Timeout, n, b.stdout.String(), b.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop sends sig and returns the exit status.
func (b *bg) stop(sig syscall.Signal) int {
	b.t.Helper()
	_ = b.cmd.Process.Signal(sig)
	return b.exit()
}

// exit waits for it to end and returns its exit status.
func (b *bg) exit() int {
	b.t.Helper()
	select {
	case <-b.done:
	case <-time.After(chattest.Timeout):
		b.t.Fatalf("chat %s still running after %v", strings.Join(b.args, " "), chattest.Timeout)
	}
	var exit *exec.ExitError
	if errors.As(b.err, &exit) {
		return exit.ExitCode()
	}
	if b.err != nil {
		b.t.Fatalf("chat %s: %v", strings.Join(b.args, " "), b.err)
	}
	return 0
}

func (b *bg) kill() {
	select {
	case <-b.done:
	default:
		_ = b.cmd.Process.Kill()
		<-b.done
	}
}

// waitFile waits until path exists: a tail has saved its first position,
// so it is subscribed and sees what comes next.
func waitFile(t testing.TB, path string) {
	t.Helper()
	chattest.Eventually(t, path+" written", func() bool {
		_, err := os.Stat(path)
		return err == nil
	})
}

func writeFile(path, data string) error { return os.WriteFile(path, []byte(data), 0o600) }

func readFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	return string(data), err
}
