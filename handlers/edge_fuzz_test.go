package handlers_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ssechat/ssechat/internal/chattest"
)

// FuzzHTTPBody sends the fuzzed body to POST /api/rooms/lobby/messages
// (as alice, a member of lobby, as is bob) and to POST /api/login through
// one in-process server: whatever the body, the answer is never 5xx, and
// every error is JSON {"error": "..."} and nothing else.
func FuzzHTTPBody(f *testing.F) {
	for _, seed := range []string{
		`{"text":"hi"}`, `{"text":"@bob psst"}`, `{"text":"@nobody psst"}`, `{"text":"@bob "}`, `{"text":" "}`,
		`{"text":""}`, `{}`, `{"text":null}`, `{"text":1}`, `{"text":"a","text":"b"}`, `{"text":"\ud800"}`,
		"{\"text\":\"\xff\"}", `{"text":"x","extra":1}`, `[]`, ``, `null`, `{"text":"hi"}{}`,
		`{"username":"carol","password":"pw-carol"}`, `{"username":"alice","password":"wrong"}`,
		`{"username":"","password":""}`, `{"username":"a b","password":"x"}`, `{"username":"dave"}`,
		`{"username":"erin","password":"` + strings.Repeat("p", 100) + `"}`, `{"username":["x"]}`,
		`{"text":"` + strings.Repeat("é", 4001) + `"}`, `{"text":"` + strings.Repeat("x", 70<<10) + `"}`,
		strings.Repeat("[", 10000), `{"text":"\u0000"}`,
	} {
		f.Add([]byte(seed))
	}
	srv := chattest.Start(f)
	alice, bob := srv.Login(f, "alice"), srv.Login(f, "bob")
	alice.Join("lobby")
	bob.Join("lobby")
	client := &http.Client{Timeout: chattest.Timeout}
	f.Cleanup(client.CloseIdleConnections)

	post := func(t *testing.T, path, token string, body []byte) {
		req, err := http.NewRequest("POST", srv.URL+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST %s %q: %v", path, body, err)
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("POST %s %q: read the answer: %v", path, body, err)
		}
		if resp.StatusCode >= 500 {
			t.Fatalf("POST %s %q: status %d after %v: %s", path, body, resp.StatusCode, time.Since(start), data)
		}
		if resp.StatusCode < 400 {
			return
		}
		var e map[string]json.RawMessage
		var msg string
		if err := json.Unmarshal(data, &e); err != nil || len(e) != 1 || json.Unmarshal(e["error"], &msg) != nil || msg == "" {
			t.Fatalf("POST %s %q: status %d, body %q is not {\"error\": \"...\"}", path, body, resp.StatusCode, data)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		post(t, "/api/rooms/lobby/messages", alice.Token, body)
		post(t, "/api/login", "", body)
	})
}
