package handlers_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/ssechat/ssechat/app"
	"github.com/ssechat/ssechat/internal/chattest"
)

// logBuffer collects a server's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// requests returns the access log's lines, decoded.
func (b *logBuffer) requests(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["msg"] == "request" {
			out = append(out, rec)
		}
	}
	return out
}

// logTo sends the server's whole log, debug included, to b as JSON, with
// or without the access log.
func logTo(b *logBuffer, access bool) chattest.Option {
	return func(cfg *app.Config) {
		log, err := app.NewLogger(b, "json", slog.LevelDebug)
		if err != nil {
			panic(err)
		}
		cfg.Log = log
		cfg.HTTP.AccessLog = access
	}
}

// One access line per request, with method, route, status, duration,
// client IP and bytes; and nowhere in the log, at any level, a password,
// a token (the session cookie's value too) or a message's text.
func TestAccessLogKeepsSecretsOut(t *testing.T) {
	var logs logBuffer
	srv := chattest.Start(t, logTo(&logs, true))
	const (
		password = "Pa55-word-only-in-the-body"
		text     = "a message whose text never reaches a log"
		private  = "a private text never logged either"
	)
	alice := srv.Anonymous(t)
	var session struct{ Token, Username string }
	alice.MustDo("POST", "/api/login", map[string]string{"username": "alice", "password": password}, &session, 200)
	alice.Token, alice.Name = session.Token, session.Username
	bob := srv.Login(t, "bob")
	requests := 2
	wrong := srv.Anonymous(t)
	wrong.MustDo("POST", "/api/login", map[string]string{"username": "alice", "password": password + "x"}, nil, 401)
	requests++

	alice.Join("lobby")
	bob.Join("lobby")
	stream := alice.Stream("")
	stream.Ready()
	sent := bob.Say("lobby", text)
	bob.MustDo("POST", "/api/users/alice/messages", map[string]string{"text": private}, nil, 201)
	stream.Expect("private", nil)
	requests += 5
	// The cookie, and a malformed body that carries the password.
	req, _ := http.NewRequest("GET", srv.URL+"/api/rooms/lobby/messages", nil)
	req.AddCookie(&http.Cookie{Name: "session", Value: session.Token})
	resp := alice.Raw(req)
	resp.Body.Close()
	req, _ = http.NewRequest("POST", srv.URL+"/api/login", strings.NewReader(`{"username":"alice","password":"`+password+`"`))
	req.Header.Set("Content-Type", "application/json")
	resp = alice.Raw(req)
	resp.Body.Close()
	requests += 2
	resumed := alice.Stream(sent.ID)
	resumed.Expect("private", nil)
	requests++
	stream.Close()
	resumed.Close()

	var lines []map[string]any
	chattest.Eventually(t, "an access line per request", func() bool {
		lines = logs.requests(t)
		return len(lines) >= requests
	})
	if len(lines) != requests {
		t.Errorf("%d access lines for %d requests:\n%s", len(lines), requests, logs.String())
	}
	routes := map[string]bool{}
	for _, l := range lines {
		for _, k := range []string{"method", "route", "status", "duration", "ip", "bytes"} {
			if _, ok := l[k]; !ok {
				t.Errorf("access line without %s: %v", k, l)
			}
		}
		if l["ip"] != "127.0.0.1" {
			t.Errorf("client ip %v, want 127.0.0.1", l["ip"])
		}
		if l["level"] != "INFO" {
			t.Errorf("access line at %v, want INFO", l["level"])
		}
		routes[l["method"].(string)+" "+l["route"].(string)] = true
	}
	for _, want := range []string{"POST /api/login", "GET /api/stream", "POST /api/rooms/:room/messages", "GET /api/rooms/:room/messages"} {
		if !routes[want] {
			t.Errorf("no access line for %s: %v", want, routes)
		}
	}

	all := logs.String()
	for what, secret := range map[string]string{
		"password": password, "alice's token": session.Token, "bob's token": bob.Token,
		"message text": text, "private text": private,
	} {
		if strings.Contains(all, secret) {
			t.Errorf("the log shows the %s", what)
		}
	}
	for _, header := range []string{"Bearer", "Authorization", "Cookie"} {
		if strings.Contains(all, header) {
			t.Errorf("the log shows a header: %s", header)
		}
	}
}

// Off (the default), the access log writes nothing.
func TestAccessLogOff(t *testing.T) {
	var logs logBuffer
	srv := chattest.Start(t, logTo(&logs, false))
	alice := srv.Login(t, "alice")
	alice.Join("lobby")
	alice.Say("lobby", "hello")
	if lines := logs.requests(t); len(lines) != 0 {
		t.Errorf("%d access lines with the access log off: %v", len(lines), lines)
	}
}

// A HEAD, which the router serves as the GET of its path, is logged as
// the HEAD the client sent.
func TestAccessLogNamesHEAD(t *testing.T) {
	var logs logBuffer
	srv := chattest.Start(t, logTo(&logs, true))
	alice := srv.Login(t, "alice")
	req, _ := http.NewRequest("HEAD", srv.URL+"/api/me", nil)
	req.Header.Set("Authorization", "Bearer "+alice.Token)
	resp := alice.Raw(req)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD /api/me: %d", resp.StatusCode)
	}
	alice.MustDo("GET", "/api/me", nil, nil, http.StatusOK)
	var methods []string
	chattest.Eventually(t, "access lines for /api/me", func() bool {
		methods = methods[:0]
		for _, l := range logs.requests(t) {
			if l["route"] == "/api/me" {
				methods = append(methods, l["method"].(string))
			}
		}
		return len(methods) >= 2
	})
	if len(methods) != 2 || methods[0] != "HEAD" || methods[1] != "GET" {
		t.Errorf("access lines of /api/me by method: %v, want [HEAD GET]", methods)
	}
}
