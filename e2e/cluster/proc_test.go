//go:build unix

package cluster_test

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ssechat/ssechat/internal/chattest"
)

// startTimeout bounds a program's start: the server migrates the schema
// first, and a private PostgreSQL takes seconds.
const startTimeout = 30 * time.Second

// process is a program the test started: an ssechat instance, nginx,
// redis-server. Its output is kept (across restarts) and logged when the
// test fails; the test's end kills it if it still runs.
type process struct {
	t    testing.TB
	name string // in the failure log: "instance A", "nginx", ...

	mu     sync.Mutex
	log    strings.Builder
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been reaped
	err    error         // what Wait returned; read it after exited is closed
	onLine func(string)  // sees each line of output of the current run
}

func newProcess(t testing.TB, name string) *process {
	p := &process{t: t, name: name, exited: make(chan struct{})}
	close(p.exited) // nothing runs yet
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s's output:\n%s", p.name, p.output())
		}
	})
	return p
}

// start runs the program; onLine (may be nil) sees every line it prints on
// stdout and stderr. Setpgid puts it in a process group of its own, which
// kill ends whole (nginx's workers, postgres's backends).
func (p *process) start(onLine func(string), path string, args ...string) {
	p.t.Helper()
	cmd := exec.Command(path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	p.mu.Lock()
	fmt.Fprintf(&p.log, "--- %s %s\n", path, strings.Join(args, " "))
	p.mu.Unlock()
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited, p.onLine = cmd, exited, onLine
	p.mu.Unlock()
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line + "\n")
			see := p.onLine
			p.mu.Unlock()
			if see != nil {
				see(line)
			}
		}
		io.Copy(io.Discard, pr)
	}()
	go func() {
		err := cmd.Wait()
		pw.Close()
		<-logDone
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(exited)
	}()
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// running is the current run's exit channel and command.
func (p *process) running() (*exec.Cmd, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd, p.exited
}

// exitErr is what Wait returned for the last run that ended.
func (p *process) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// alive tells whether the program still runs.
func (p *process) alive() bool {
	_, exited := p.running()
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// signal sends sig to the program (not to its group).
func (p *process) signal(sig syscall.Signal) {
	p.t.Helper()
	cmd, _ := p.running()
	if err := cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v to %s: %v", sig, p.name, err)
	}
}

// wait waits for the program to exit and returns Wait's error.
func (p *process) wait(d time.Duration) error {
	p.t.Helper()
	_, exited := p.running()
	select {
	case <-exited:
		return p.exitErr()
	case <-time.After(d):
		p.t.Fatalf("%s still running after %v", p.name, d)
		return nil
	}
}

// kill ends the program's whole process group with SIGKILL, as a crash
// would, and reaps it. Safe to call when it is not running.
func (p *process) kill() {
	cmd, exited := p.running()
	select {
	case <-exited:
		return
	default:
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
}

// instance is one ssechat process of a cluster.
type instance struct {
	*process
	URL     string      // http://127.0.0.1:PORT
	Addr    string      // 127.0.0.1:PORT, kept across restarts
	args    []string    // every flag but --addr
	serving chan string // the address the launched server said it serves on
}

var servingLine = regexp.MustCompile(`msg=serving addr=(\S+)`)

// startInstances runs the built server once per name with args (--addr
// aside), each on a free loopback port, all at once (they migrate the
// schema concurrently, as a deployment's instances do), and returns once
// every one is listening.
func startInstances(t testing.TB, args []string, names ...string) []*instance {
	t.Helper()
	var out []*instance
	for _, name := range names {
		in := &instance{process: newProcess(t, "instance "+name), args: args}
		in.launch("127.0.0.1:0")
		out = append(out, in)
	}
	for _, in := range out {
		in.await()
	}
	return out
}

// launch starts the server on addr; await waits until it listens.
func (in *instance) launch(addr string) {
	in.t.Helper()
	in.serving = make(chan string, 1)
	onLine := func(line string) {
		if m := servingLine.FindStringSubmatch(line); m != nil {
			select {
			case in.serving <- m[1]:
			default:
			}
		}
	}
	in.start(onLine, serverBin, append([]string{"--addr", addr}, in.args...)...)
}

// await waits for the "msg=serving addr=..." line of the launched server.
func (in *instance) await() {
	in.t.Helper()
	_, exited := in.running()
	select {
	case a := <-in.serving:
		in.Addr, in.URL = a, "http://"+a
	case <-exited:
		in.t.Fatalf("%s exited at start: %v\n%s", in.name, in.exitErr(), in.output())
	case <-time.After(startTimeout):
		in.t.Fatalf("%s not listening within %v\n%s", in.name, startTimeout, in.output())
	}
}

// restart starts the server again on the address it had (after a kill).
func (in *instance) restart() {
	in.t.Helper()
	in.kill()
	in.launch(in.Addr)
	in.await()
}

// server lets chattest's clients talk to the instance.
func (in *instance) server() *chattest.Server { return &chattest.Server{URL: in.URL} }
