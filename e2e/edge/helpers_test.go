package edge_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ssechat/ssechat/app"
	"github.com/ssechat/ssechat/internal/chattest"
)

// server is the real service, served by app.Serve as main serves it.
type server struct {
	URL     string // http:// or https://127.0.0.1:PORT
	Addr    string // 127.0.0.1:PORT
	DB      string
	Metrics string // http://HOST:PORT/metrics, "" without Config.MetricsAddr
}

// start serves a fresh service on a loopback port until the test ends.
func start(t *testing.T, opts ...func(*app.Config)) *server {
	t.Helper()
	cfg := app.Config{
		DB:           filepath.Join(t.TempDir(), "chat.db"),
		PasswordCost: 4,
		Static:       os.DirFS(repoDir("static")),
		Log:          discard(),
	}
	for _, o := range opts {
		o(&cfg)
	}
	a, err := app.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, ln, 5*time.Second) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(chattest.Timeout):
			t.Errorf("Serve still running %v after its context ended", chattest.Timeout)
		}
	})
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	srv := &server{URL: scheme + "://" + ln.Addr().String(), Addr: ln.Addr().String(), DB: cfg.DB}
	if m := a.MetricsAddr(); m != "" {
		srv.Metrics = "http://" + m + "/metrics"
	}
	return srv
}

// metric scrapes srv's metrics and returns the value of the series whose
// line starts with series (name and labels as exposed), or -1 if absent.
func metric(t *testing.T, srv *server, series string) float64 {
	t.Helper()
	resp, err := http.Get(srv.Metrics)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return -1
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func repoDir(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", name)
}

// client is an HTTP client of its own (its connections are not shared
// with other tests') whose connections come from the loopback address
// from ("" is the system's choice, 127.0.0.1).
func client(t *testing.T, from string) *http.Client {
	t.Helper()
	d := &net.Dialer{}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: chattest.Timeout}
}

// do sends body (none if "") with token (none if "") and returns the
// response, its body read.
func do(t *testing.T, hc *http.Client, method, url, token, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, data
}

// mustDo is do that fails the test unless the status is want.
func mustDo(t *testing.T, hc *http.Client, want int, method, url, token, body string, header ...string) (*http.Response, []byte) {
	t.Helper()
	resp, data := do(t, hc, method, url, token, body, header...)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, url, resp.StatusCode, want, data)
	}
	return resp, data
}

// login logs name in (registering it) and returns the token and the
// response, whose cookie the caller may check.
func login(t *testing.T, hc *http.Client, base, name string, header ...string) (string, *http.Response) {
	t.Helper()
	resp, data := mustDo(t, hc, http.StatusOK, "POST", base+"/api/login", "",
		`{"username":"`+name+`","password":"pw-`+name+`"}`, header...)
	var out struct{ Token string }
	if err := json.Unmarshal(data, &out); err != nil || out.Token == "" {
		t.Fatalf("login %s: %s", name, data)
	}
	return out.Token, resp
}

// isJSONError reports whether body is {"error": "..."} with a message.
func isJSONError(body []byte) bool {
	var v struct{ Error string }
	return json.Unmarshal(body, &v) == nil && v.Error != ""
}

// rawConn is one TCP connection spoken to by hand, for what an
// http.Client hides: which connection a request goes on, and when the
// server closes it.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

// dial connects to addr from the loopback address from ("": any).
func dial(t *testing.T, addr, from string) *rawConn {
	t.Helper()
	d := &net.Dialer{Timeout: chattest.Timeout}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, br: bufio.NewReader(c)}
}

// request is the head of a request to send by hand.
func request(method, path, token string, header ...string) string {
	var b strings.Builder
	b.WriteString(method + " " + path + " HTTP/1.1\r\nHost: edge.test\r\n")
	if token != "" {
		b.WriteString("Authorization: Bearer " + token + "\r\n")
	}
	for i := 0; i+1 < len(header); i += 2 {
		b.WriteString(header[i] + ": " + header[i+1] + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// send writes s, failing the test if it cannot.
func (c *rawConn) send(t *testing.T, s string) {
	t.Helper()
	_ = c.SetWriteDeadline(time.Now().Add(chattest.Timeout))
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatalf("write request: %v", err)
	}
}

// response reads the next response and its body (unless it is a stream,
// whose body is left to read).
func (c *rawConn) response(t *testing.T, method string) (*http.Response, []byte) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(chattest.Timeout))
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	if resp.Header.Get("Content-Type") == "text/event-stream" {
		_ = c.SetReadDeadline(time.Time{})
		return resp, nil
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("read response body: %v", err)
	}
	return resp, data
}

// waitClosed waits for the server to close c and returns how long that
// took; it fails the test if anything but the end arrives first.
func (c *rawConn) waitClosed(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(chattest.Timeout))
	n, err := c.br.Read(make([]byte, 1))
	if n > 0 || !closedByPeer(err) {
		t.Fatalf("read %d bytes, %v; want the server to close the connection", n, err)
	}
	return time.Since(start)
}

// closedByPeer reports whether err is the peer closing or resetting the
// connection (not a timeout).
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// openStream opens token's stream on a connection of its own from the
// loopback address from ("": any), over HTTP/1.1: the broker takes the
// connection over. Close the stream to close the connection.
func openStream(t *testing.T, addr, from, token string) *chattest.Stream {
	t.Helper()
	c := dial(t, addr, from)
	c.send(t, request("GET", "/api/stream", token))
	resp, _ := c.response(t, "GET")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("open stream: status %d", resp.StatusCode)
	}
	return chattest.ReadStream(t, resp, func() { c.Close() })
}
