// Package chattest boots a real ssechat server for tests and speaks HTTP and
// SSE to it as a client would.
package chattest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ssechat/ssechat/app"
	"github.com/ssechat/ssechat/broker"
)

// Timeout bounds every wait of a test client.
const Timeout = 10 * time.Second

// Server is a running service on a loopback port.
type Server struct {
	URL   string
	App   *app.App
	DB    string
	srv   *httptest.Server
	close sync.Once
}

// Option changes the configuration of a test server.
type Option func(*app.Config)

// WithBroker sets the broker configuration.
func WithBroker(c broker.Config) Option { return func(cfg *app.Config) { cfg.Broker = c } }

// WithDB makes the server use the SQLite file at path.
func WithDB(path string) Option { return func(cfg *app.Config) { cfg.DB = path } }

// Start boots the real service (store, broker, router) on a fresh SQLite
// file in t.TempDir() and closes it when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	cfg := app.Config{
		DB:           filepath.Join(t.TempDir(), "chat.db"),
		PasswordCost: 4,
		Static:       os.DirFS(repoDir("static")),
		Log:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range opts {
		o(&cfg)
	}
	a, err := app.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start server: %v", err)
	}
	s := &Server{App: a, DB: cfg.DB}
	s.srv = httptest.NewServer(a.Handler())
	s.URL = s.srv.URL
	t.Cleanup(s.Close)
	return s
}

// Close shuts the server down as SIGTERM would: streams are told goodbye,
// then everything stops. Safe to call twice.
func (s *Server) Close() {
	s.close.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), Timeout)
		defer cancel()
		_ = s.App.Broker().Shutdown(ctx)
		s.srv.CloseClientConnections()
		s.srv.Close()
		_ = s.App.Close()
	})
}

// repoDir finds a directory of the repository from this source file.
func repoDir(name string) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", name)
}

// Client is one logged-in user.
type Client struct {
	t     testing.TB
	base  string
	Name  string
	Token string
}

// Login logs name in (registering it) with password "pw-"+name.
func (s *Server) Login(t testing.TB, name string) *Client {
	t.Helper()
	c := &Client{t: t, base: s.URL}
	var out struct{ Token, Username string }
	status := c.Do("POST", "/api/login", map[string]string{"username": name, "password": "pw-" + name}, &out)
	if status != http.StatusOK {
		t.Fatalf("login %s: status %d", name, status)
	}
	c.Name, c.Token = out.Username, out.Token
	return c
}

// On is the same session talking to another server: another instance of
// the same cluster, say.
func (c *Client) On(s *Server) *Client {
	other := *c
	other.base = s.URL
	return &other
}

// Anonymous is a client without a session.
func (s *Server) Anonymous(t testing.TB) *Client { return &Client{t: t, base: s.URL} }

// Do sends body as JSON (nil: no body) with the client's bearer token,
// decodes a JSON answer into out (if not nil) and returns the status.
func (c *Client) Do(method, path string, body, out any) int {
	c.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatalf("encode body: %v", err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp := c.Raw(req)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			c.t.Fatalf("%s %s: decode %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

// Raw sends a prepared request.
func (c *Client) Raw(req *http.Request) *http.Response {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(req.Context(), Timeout)
	c.t.Cleanup(cancel)
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	return resp
}

// History pages back through all of room's messages and returns them
// oldest first.
func (c *Client) History(room string) []Event {
	c.t.Helper()
	var all []Event
	before := ""
	for {
		var page struct{ Messages []Event }
		path := "/api/rooms/" + room + "/messages?limit=500"
		if before != "" {
			path += "&before=" + before
		}
		c.MustDo("GET", path, nil, &page, http.StatusOK)
		all = append(page.Messages, all...)
		if len(page.Messages) < 500 {
			return all
		}
		before = page.Messages[0].ID
	}
}

// MustDo is Do that fails the test unless the status is want.
func (c *Client) MustDo(method, path string, body, out any, want int) {
	c.t.Helper()
	if got := c.Do(method, path, body, out); got != want {
		c.t.Fatalf("%s %s as %s: status %d, want %d", method, path, c.Name, got, want)
	}
}

// Join joins room.
func (c *Client) Join(room string) {
	c.t.Helper()
	c.MustDo("POST", "/api/rooms/"+room+"/join", nil, nil, 200)
}

// Say posts text to room and returns the event the server answered.
func (c *Client) Say(room, text string) Event {
	c.t.Helper()
	var e Event
	c.MustDo("POST", "/api/rooms/"+room+"/messages", map[string]string{"text": text}, &e, 201)
	return e
}

// Event is an event's JSON as clients see it.
type Event struct {
	ID     string `json:"id"`
	Room   string `json:"room"`
	From   string `json:"from"`
	To     string `json:"to"`
	User   string `json:"user"`
	Text   string `json:"text"`
	Status string `json:"status"`
	Reason string `json:"reason"`
	TS     string `json:"ts"`
	// Members and Online are a members event's counts.
	Members int `json:"members"`
	Online  int `json:"online"`
	// Read is a read event's marker; With names its conversation.
	Read string `json:"read"`
	With string `json:"with"`
}

// Frame is one SSE event as it came off the wire.
type Frame struct {
	ID, Kind, Data, Retry string
	HasID                 bool
	Event                 Event
}

// Stream is an open SSE connection.
type Stream struct {
	t      testing.TB
	Resp   *http.Response
	frames chan Frame
	stop   func() // ends the connection
	done   chan struct{}
}

// Stream opens the client's SSE stream; lastEventID "" sends none. It
// returns once the response headers arrived.
func (c *Client) Stream(lastEventID string) *Stream {
	c.t.Helper()
	req, _ := http.NewRequest("GET", c.base+"/api/stream", nil)
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	return OpenStream(c.t, req)
}

// OpenStream sends req and reads its body as an SSE stream until Close.
func OpenStream(t testing.TB, req *http.Request) *Stream {
	t.Helper()
	return OpenStreamWith(t, http.DefaultClient, req)
}

// OpenStreamWith is OpenStream over hc (an HTTP/2 client, say).
func OpenStreamWith(t testing.TB, hc *http.Client, req *http.Request) *Stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := hc.Do(req.WithContext(ctx))
	if err != nil {
		cancel()
		t.Fatalf("open stream: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("open stream: status %d: %s", resp.StatusCode, body)
	}
	return ReadStream(t, resp, cancel)
}

// ReadStream reads resp's body as an SSE stream; stop ends the connection
// (Close calls it, and so does the test's cleanup).
func ReadStream(t testing.TB, resp *http.Response, stop func()) *Stream {
	s := &Stream{t: t, Resp: resp, frames: make(chan Frame, 10000), stop: stop, done: make(chan struct{})}
	go s.read()
	t.Cleanup(s.Close)
	return s
}

func (s *Stream) read() {
	defer close(s.done)
	defer close(s.frames)
	defer s.Resp.Body.Close()
	ReadFrames(s.Resp.Body, func(f Frame) { s.frames <- f })
}

// ReadFrames parses an SSE body and calls emit for every complete event
// (one ended by a blank line); comment-only blocks (heartbeats) are skipped.
func ReadFrames(r io.Reader, emit func(Frame)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var f Frame
	var data []string
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if f.Kind != "" || len(data) > 0 {
				f.Data = strings.Join(data, "\n")
				_ = json.Unmarshal([]byte(f.Data), &f.Event)
				emit(f)
			}
			f, data = Frame{}, nil
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			f.ID, f.HasID = value, true
		case "event":
			f.Kind = value
		case "data":
			data = append(data, value)
		case "retry":
			f.Retry = value
		}
	}
}

// Close ends the connection and waits for the reader.
func (s *Stream) Close() {
	s.stop()
	<-s.done
}

// Next returns the next frame, failing the test after Timeout.
func (s *Stream) Next() Frame {
	s.t.Helper()
	select {
	case f, ok := <-s.frames:
		if !ok {
			s.t.Fatalf("stream ended while waiting for an event")
		}
		return f
	case <-time.After(Timeout):
		s.t.Fatalf("no event within %v", Timeout)
	}
	return Frame{}
}

// Expect skips frames until one of kind for which match (may be nil)
// holds, and fails the test if none comes within Timeout.
func (s *Stream) Expect(kind string, match func(Event) bool) Frame {
	s.t.Helper()
	deadline := time.After(Timeout)
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				s.t.Fatalf("stream ended while waiting for %s", kind)
			}
			if f.Kind == kind && (match == nil || match(f.Event)) {
				return f
			}
		case <-deadline:
			s.t.Fatalf("no %s event within %v", kind, Timeout)
		}
	}
}

// Ready waits for the stream's ready event and returns its position.
func (s *Stream) Ready() string { s.t.Helper(); return s.Expect("ready", nil).ID }

// ExpectNone fails the test if a frame of one of kinds arrives within d.
// It proves absence only up to d, so callers first wait for a later event
// that must follow the unwanted one if it were sent (see Drain).
func (s *Stream) ExpectNone(d time.Duration, kinds ...string) {
	s.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				return
			}
			for _, k := range kinds {
				if f.Kind == k {
					s.t.Fatalf("unexpected %s event: %s", f.Kind, f.Data)
				}
			}
		case <-deadline:
			return
		}
	}
}

// Until collects frames up to and including the first for which stop holds.
func (s *Stream) Until(stop func(Frame) bool) []Frame {
	s.t.Helper()
	var out []Frame
	for {
		f := s.Next()
		out = append(out, f)
		if stop(f) {
			return out
		}
	}
}

// Ended waits until the server closes the stream and returns the frames
// that came before the end.
func (s *Stream) Ended() []Frame {
	s.t.Helper()
	var out []Frame
	deadline := time.After(Timeout)
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				return out
			}
			out = append(out, f)
		case <-deadline:
			s.t.Fatalf("stream still open after %v", Timeout)
		}
	}
}

// Eventually polls cond until it holds or Timeout passes.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Kinds lists the kinds of frames, for failure messages.
func Kinds(frames []Frame) string {
	var b strings.Builder
	for _, f := range frames {
		fmt.Fprintf(&b, "%s#%s ", f.Kind, f.ID)
	}
	return b.String()
}
