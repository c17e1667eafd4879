package browser

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// serverPackage is the main package of the chat server, built once per run.
const serverPackage = "github.com/ssechat/ssechat"

// chatServer is the real server binary, run as a child process so that a
// test can kill it (SIGKILL, not a graceful stop) and start it again on the
// same port with the same database, as a crash and restart would.
type chatServer struct {
	t    *testing.T
	bin  string
	args []string // extra flags
	db   string
	addr string // host:port
	out  *lockedBuffer
	cmd  *exec.Cmd
	done chan struct{}
}

// buildServer compiles the server once for the whole test. CHAT_E2E_SERVER_BIN
// names a binary to use instead (CI can build it once for several jobs).
func buildServer(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv("CHAT_E2E_SERVER_BIN"); bin != "" {
		return bin
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building the server needs the go tool: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "ssechat")
	// No -race here: the server's own tests cover that, and a race build
	// would slow every page load down on a two-core machine.
	cmd := exec.Command(goTool, "build", "-o", bin, serverPackage)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", serverPackage, err, out)
	}
	return bin
}

func startServer(t *testing.T, bin string, args ...string) *chatServer {
	t.Helper()
	s := &chatServer{
		t:    t,
		bin:  bin,
		args: args,
		db:   filepath.Join(t.TempDir(), "chat.db"),
		addr: freeAddr(t),
		out:  &lockedBuffer{},
	}
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("server output:\n%s", s.out.String())
		}
	})
	s.start()
	return s
}

func (s *chatServer) url() string { return "http://" + s.addr }

// start runs the binary and returns once it answers HTTP.
func (s *chatServer) start() {
	s.t.Helper()
	args := append([]string{"--addr", s.addr, "--db", s.db, "--password-cost", "4", "--limits", "off", "--metrics-addr", ""}, s.args...)
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout = s.out
	cmd.Stderr = s.out
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting %s: %v", s.bin, err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	go func(done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(s.done)

	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		res, err := client.Get(s.url() + "/api/me")
		if err == nil {
			res.Body.Close()
			return
		}
		select {
		case <-s.done:
			s.t.Fatalf("server exited before answering:\n%s", s.out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("server did not answer on %s within 30s: %v\n%s", s.addr, err, s.out.String())
		}
	}
}

// kill ends the server with SIGKILL: no graceful shutdown, no goodbye to
// the streams, as in a crash.
func (s *chatServer) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// stop asks the server to shut down gracefully (SIGTERM) and waits for it:
// the streams get a shutdown event first.
func (s *chatServer) stop() {
	s.t.Helper()
	if s.cmd == nil {
		return
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatalf("signalling the server: %v", err)
	}
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.t.Errorf("the server did not stop within 30s of SIGTERM")
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// freeAddr picks a loopback port that is free now. The server cannot tell
// us the port it chose, so we choose it, with a tiny window for a clash.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// apiClient talks to the server as a script would, with a bearer token.
type apiClient struct {
	base  string
	token string
}

func login(t *testing.T, base, user, password string) *apiClient {
	t.Helper()
	var res struct {
		Token string `json:"token"`
	}
	c := &apiClient{base: base}
	if err := c.do(context.Background(), "POST", "/api/login", map[string]string{"username": user, "password": password}, &res); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	c.token = res.Token
	return c
}

func (c *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode/100 != 2 {
		return &httpError{status: res.StatusCode, body: strings.TrimSpace(string(data))}
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
	}
	return nil
}

type httpError struct {
	status int
	body   string
}

func (e *httpError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.body) }

// send posts a room message. The server runs with --limits off, so there
// is no 429 to wait out: bulk history is set up faster over the API than
// through a page.
func (c *apiClient) send(t *testing.T, room, text string) {
	t.Helper()
	if err := c.do(context.Background(), "POST", "/api/rooms/"+room+"/messages", map[string]string{"text": text}, nil); err != nil {
		t.Fatalf("sending %q to %s: %v", text, room, err)
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
