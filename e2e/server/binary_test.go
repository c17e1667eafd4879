//go:build unix

package server_test

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

	"github.com/ssechat/ssechat/internal/chattest"
)

// buildServer builds the ssechat command into a temporary directory.
func buildServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ssechat")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = repoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is a running ssechat process.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	URL    string
	exited chan struct{}
	err    error // what Wait returned; read it after exited is closed

	mu  sync.Mutex
	log strings.Builder
}

var servingLine = regexp.MustCompile(`msg=serving addr=(\S+)`)

// startServer runs bin on a free loopback port with the SQLite file db and
// returns once it is listening; the test's end kills it if still running.
func startServer(t *testing.T, bin, db string, args ...string) *proc {
	t.Helper()
	// --limits off: the crash tests post and register as fast as they can.
	args = append([]string{"--addr", "127.0.0.1:0", "--db", db, "--password-cost", "4", "--limits", "off", "--metrics-addr", ""}, args...)
	p := &proc{t: t, cmd: exec.Command(bin, args...), exited: make(chan struct{})}
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
		p.kill()
		if t.Failed() {
			t.Logf("server log (%s):\n%s", strings.Join(args, " "), p.output())
		}
	})
	select {
	case a := <-addr:
		p.URL = "http://" + a
	case <-p.exited:
		t.Fatalf("server exited at start: %v\n%s", p.err, p.output())
	case <-time.After(chattest.Timeout):
		t.Fatalf("server not listening within %v\n%s", chattest.Timeout, p.output())
	}
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// server lets chattest's clients talk to the process.
func (p *proc) server() *chattest.Server { return &chattest.Server{URL: p.URL} }

// signal sends sig to the process.
func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// wait waits for the process to exit and returns Wait's error.
func (p *proc) wait() error {
	p.t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(chattest.Timeout):
		p.t.Fatalf("server still running after %v", chattest.Timeout)
		return nil
	}
}

// kill ends the process with SIGKILL, as a crash would, and reaps it.
func (p *proc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}
