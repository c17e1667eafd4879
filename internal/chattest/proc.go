//go:build unix

package chattest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BuildServer builds the ssechat command into a temporary directory of
// t's and returns the binary's path.
func BuildServer(t testing.TB) string {
	t.Helper()
	return Build(t, ".", "ssechat")
}

// Build builds the command in pkg (a directory relative to the repository
// root, e.g. "examples/echobot") into a temporary directory of t's as
// name.
func Build(t testing.TB, pkg, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("go", "build", "-o", bin, "./"+filepath.ToSlash(pkg))
	cmd.Dir = repoDir(".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// Proc is a running ssechat process.
type Proc struct {
	t      testing.TB
	cmd    *exec.Cmd
	URL    string
	exited chan struct{}
	err    error // what Wait returned; read it after exited is closed

	mu  sync.Mutex
	log strings.Builder
}

var servingLine = regexp.MustCompile(`msg=serving addr=(\S+)`)

// StartProc runs bin on a free loopback port with the SQLite file db and
// returns once it is listening; the test's end kills it if still running,
// and logs its output if the test failed. The limits are off and bcrypt
// cheap (tests post and register as fast as they can); args come after
// those flags, so they can turn them back on.
func StartProc(t testing.TB, bin, db string, args ...string) *Proc {
	t.Helper()
	args = append([]string{"--addr", "127.0.0.1:0", "--db", db, "--password-cost", "4", "--limits", "off", "--metrics-addr", ""}, args...)
	p := &Proc{t: t, cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			p.mu.Unlock()
			if m := servingLine.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
		}
	}()
	go func() {
		// Wait closes the pipe: read it to the end first.
		<-logDone
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("server log (%s):\n%s", strings.Join(args, " "), p.Output())
		}
	})
	select {
	case a := <-addr:
		p.URL = "http://" + a
	case <-p.exited:
		t.Fatalf("server exited at start: %v\n%s", p.err, p.Output())
	case <-time.After(Timeout):
		t.Fatalf("server not listening within %v\n%s", Timeout, p.Output())
	}
	return p
}

// Output is what the process logged so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// Server lets chattest's clients talk to the process.
func (p *Proc) Server() *Server { return &Server{URL: p.URL} }

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// Wait waits for the process to exit and returns Wait's error.
func (p *Proc) Wait() error {
	p.t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(Timeout):
		p.t.Fatalf("server still running after %v", Timeout)
		return nil
	}
}

// Kill ends the process with SIGKILL, as a crash would, and reaps it.
func (p *Proc) Kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}
