package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// soakServer is an ssechat process the soak started: its limits on (the
// defaults, and the ones the soak's flags name), a fresh SQLite database,
// metrics and pprof on loopback ports of their own.
type soakServer struct {
	cmd                  *exec.Cmd
	addr, metrics, pprof string
	exited               chan struct{}
	logPath              string
}

func startSoakServer(ctx context.Context, cfg soakConfig, log *slog.Logger) (*soakServer, error) {
	dir := cfg.Dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "ssechat-soak-"); err != nil {
			return nil, err
		}
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	s := &soakServer{
		addr:    "127.0.0.1:" + strconv.Itoa(ports[0]),
		metrics: "http://127.0.0.1:" + strconv.Itoa(ports[1]) + "/metrics",
		pprof:   "http://127.0.0.1:" + strconv.Itoa(ports[2]),
		exited:  make(chan struct{}),
		logPath: filepath.Join(dir, "server.log"),
	}
	args := []string{
		"--addr", s.addr,
		"--db", filepath.Join(dir, "soak.db"),
		"--metrics-addr", "127.0.0.1:" + strconv.Itoa(ports[1]),
		"--pprof", "127.0.0.1:" + strconv.Itoa(ports[2]),
		// Not a limit: the cost of the thousands of logins of the setup.
		"--password-cost", "4",
		"--log-level", "warn",
		"--limits", "on",
		"--max-conns-per-ip", strconv.Itoa(cfg.MaxConnsPerIP),
		"--message-rate", strconv.FormatFloat(cfg.MessageRate, 'g', -1, 64),
		"--message-burst", strconv.Itoa(cfg.MessageBurst),
	}
	args = append(args, cfg.ServerFlags...)
	logf, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	s.cmd = exec.Command(cfg.Server, args...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", cfg.Server, err)
	}
	go func() {
		_ = s.cmd.Wait()
		logf.Close()
		close(s.exited)
	}()
	log.Info("soak: server started", "pid", s.cmd.Process.Pid, "addr", s.addr, "log", s.logPath, "args", args)
	if err := s.waitUp(ctx); err != nil {
		s.stop(log)
		return nil, err
	}
	return s, nil
}

// waitUp polls /healthz until it answers 200, the process exits or a
// minute passes.
func (s *soakServer) waitUp(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.addr+"/healthz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			out, _ := os.ReadFile(s.logPath)
			return fmt.Errorf("the server exited at start: %s", bytes.TrimSpace(out))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("the server did not answer /healthz within a minute")
		}
	}
}

// stop ends the server as an operator would (SIGTERM), and kills it if it
// is still there 15 s later.
func (s *soakServer) stop(log *slog.Logger) {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		log.Warn("soak: the server did not exit 15 s after SIGTERM: killing it", "pid", s.cmd.Process.Pid)
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// freePorts finds n free loopback ports (free a moment ago: another
// process may take one in between, which the start then reports).
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
