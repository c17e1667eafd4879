package handlers_test

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ssechat/ssechat/broker"
	"github.com/ssechat/ssechat/internal/chattest"
)

// Bad input gets a JSON error with the right status and changes nothing.
func TestBadInputIsRefusedWithAClearError(t *testing.T) {
	srv := chattest.Start(t)
	alice := srv.Login(t, "alice")
	srv.Login(t, "bob")
	alice.Join("lobby")

	long := strings.Repeat("é", 4001)
	cases := []struct {
		name, method, path, body string
		want                     int
	}{
		{"login: malformed JSON", "POST", "/api/login", `{"username":`, 400},
		{"login: wrong type", "POST", "/api/login", `{"username":5,"password":"x"}`, 400},
		{"login: empty body", "POST", "/api/login", ``, 400},
		{"login: bad username", "POST", "/api/login", `{"username":"al ice","password":"x"}`, 400},
		{"login: username too long", "POST", "/api/login", `{"username":"` + strings.Repeat("a", 33) + `","password":"x"}`, 400},
		{"login: empty password", "POST", "/api/login", `{"username":"zed","password":""}`, 400},
		{"login: trailing data", "POST", "/api/login", `{"username":"zed","password":"x"} {}`, 400},
		{"login: not an object", "POST", "/api/login", `["zed","x"]`, 400},
		{"login: unknown field", "POST", "/api/login", `{"username":"zed","password":"x","remember":true}`, 400},
		{"login: password twice", "POST", "/api/login", `{"username":"zed","password":"x","password":"y"}`, 400},
		{"login: username twice, in another case", "POST", "/api/login", `{"username":"zed","Username":"alice","password":"x"}`, 400},
		{"login: invalid UTF-8", "POST", "/api/login", "{\"username\":\"zed\",\"password\":\"\xff\xfe\"}", 400},
		{"login: lone surrogate", "POST", "/api/login", `{"username":"zed","password":"\udc00"}`, 400},
		{"message: malformed JSON", "POST", "/api/rooms/lobby/messages", `{"text":"hi"`, 400},
		{"message: text missing", "POST", "/api/rooms/lobby/messages", `{}`, 400},
		{"message: text not a string", "POST", "/api/rooms/lobby/messages", `{"text":["hi"]}`, 400},
		{"message: text a number", "POST", "/api/rooms/lobby/messages", `{"text":5}`, 400},
		{"message: text an object", "POST", "/api/rooms/lobby/messages", `{"text":{"a":1}}`, 400},
		{"message: invalid UTF-8", "POST", "/api/rooms/lobby/messages", "{\"text\":\"caf\xe9\"}", 400},
		{"message: overlong UTF-8", "POST", "/api/rooms/lobby/messages", "{\"text\":\"\xc0\xaf\"}", 400},
		{"message: UTF-8 of a surrogate", "POST", "/api/rooms/lobby/messages", "{\"text\":\"\xed\xa0\x80\"}", 400},
		{"message: lone high surrogate", "POST", "/api/rooms/lobby/messages", `{"text":"\ud800"}`, 400},
		{"message: lone low surrogate", "POST", "/api/rooms/lobby/messages", `{"text":"a\uDC00b"}`, 400},
		{"message: high surrogate, then a letter", "POST", "/api/rooms/lobby/messages", `{"text":"\ud83d\u0041"}`, 400},
		{"message: surrogates the wrong way round", "POST", "/api/rooms/lobby/messages", `{"text":"\ude00\ud83d"}`, 400},
		{"message: high surrogate at the end", "POST", "/api/rooms/lobby/messages", `{"text":"hi \ud83d"}`, 400},
		{"message: text twice", "POST", "/api/rooms/lobby/messages", `{"text":"one","text":"two"}`, 400},
		{"message: text twice, escaped", "POST", "/api/rooms/lobby/messages", `{"text":"one","t\u0065xt":"two"}`, 400},
		{"message: text twice, in another case", "POST", "/api/rooms/lobby/messages", `{"text":"one","TEXT":"two"}`, 400},
		{"message: duplicate key inside", "POST", "/api/rooms/lobby/messages", `{"text":{"a":1,"a":2}}`, 400},
		{"message: unknown field", "POST", "/api/rooms/lobby/messages", `{"text":"hi","room":"den"}`, 400},
		{"message: null body", "POST", "/api/rooms/lobby/messages", `null`, 400},
		{"message: a string body", "POST", "/api/rooms/lobby/messages", `"hi"`, 400},
		{"message: cut short", "POST", "/api/rooms/lobby/messages", `{"text":"hi",`, 400},
		{"message: nested too deep", "POST", "/api/rooms/lobby/messages", `{"text":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, 400},
		{"message: empty text", "POST", "/api/rooms/lobby/messages", `{"text":""}`, 400},
		{"message: blank text", "POST", "/api/rooms/lobby/messages", `{"text":" \n\t"}`, 400},
		{"message: 4,001 characters", "POST", "/api/rooms/lobby/messages", `{"text":"` + long + `"}`, 400},
		{"message: body over 64 KiB", "POST", "/api/rooms/lobby/messages", `{"text":"` + strings.Repeat("a", 70000) + `"}`, 413},
		{"message: mention with no text", "POST", "/api/rooms/lobby/messages", `{"text":"@bob "}`, 400},
		{"message: bad room name", "POST", "/api/rooms/lob%20by/messages", `{"text":"hi"}`, 400},
		{"message: room ..", "POST", "/api/rooms/%2E%2E/messages", `{"text":"hi"}`, 400},
		{"message: room name too long", "POST", "/api/rooms/" + strings.Repeat("r", 65) + "/messages", `{"text":"hi"}`, 400},
		{"message: unknown room", "POST", "/api/rooms/nowhere/messages", `{"text":"hi"}`, 404},
		{"private: bad username", "POST", "/api/users/b%21b/messages", `{"text":"hi"}`, 400},
		{"private: unknown user", "POST", "/api/users/nobody/messages", `{"text":"hi"}`, 404},
		{"private: lone surrogate", "POST", "/api/users/bob/messages", `{"text":"\ud800"}`, 400},
		{"private: unknown field", "POST", "/api/users/bob/messages", `{"text":"hi","to":"carol"}`, 400},
		{"join: bad room name", "POST", "/api/rooms/a%2Bb/join", ``, 400},
		{"history: limit 0", "GET", "/api/rooms/lobby/messages?limit=0", ``, 400},
		{"history: limit 501", "GET", "/api/rooms/lobby/messages?limit=501", ``, 400},
		{"history: limit not a number", "GET", "/api/rooms/lobby/messages?limit=ten", ``, 400},
		{"history: before not a number", "GET", "/api/rooms/lobby/messages?before=x", ``, 400},
		{"history: before 0", "GET", "/api/users/bob/messages?before=0", ``, 400},
		{"unknown API route", "GET", "/api/nothing", ``, 404},
		{"wrong method", "DELETE", "/api/rooms", ``, 405},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+alice.Token)
			resp := alice.Raw(req)
			defer resp.Body.Close()
			var body struct{ Error string }
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d (body %s)", resp.StatusCode, tc.want, raw)
			}
			if err := json.Unmarshal(raw, &body); err != nil || body.Error == "" {
				t.Fatalf("body %q is not a JSON error", raw)
			}
			if goTypes.MatchString(body.Error) {
				t.Fatalf("error %q shows Go's types or wording", body.Error)
			}
		})
	}
	// Nothing above reached the room.
	var page struct{ Messages []chattest.Event }
	alice.MustDo("GET", "/api/rooms/lobby/messages", nil, &page, 200)
	if len(page.Messages) != 0 {
		t.Fatalf("refused input was stored: %+v", page.Messages)
	}
}

// goTypes matches what encoding/json's own messages show: Go types and
// struct fields, which mean nothing to a client.
var goTypes = regexp.MustCompile(`json: |Go (struct|value)|struct ?\{|\*?\bstring\b.*\bof type\b|map\[|\[\]|interface ?\{|handlers\.|\bint64\b|\bfloat64\b`)

// The errors of bad JSON bodies say what is wrong in words, and name the
// field; the decoder's own messages never get through.
func TestJSONErrorsSpeakPlainly(t *testing.T) {
	srv := chattest.Start(t)
	alice := srv.Login(t, "alice")
	alice.Join("lobby")
	for _, tc := range []struct{ path, body, want string }{
		{"/api/login", `{"username":5,"password":"x"}`, `field "username" must be a string`},
		{"/api/login", `{"username":"zed","password":true}`, `field "password" must be a string`},
		{"/api/rooms/lobby/messages", `{"text":["hi"]}`, `field "text" must be a string`},
		{"/api/rooms/lobby/messages", `{"text":{}}`, `field "text" must be a string`},
		{"/api/rooms/lobby/messages", `{"text":"hi","extra":1}`, `unknown field "extra"`},
		{"/api/rooms/lobby/messages", `{"text":"a","Text":"b"}`, `duplicate key "Text"`},
		{"/api/rooms/lobby/messages", `{"text":"\ud800"}`, `request body must be valid Unicode: \ud800 is half of a UTF-16 surrogate pair, not a character`},
		{"/api/rooms/lobby/messages", "{\"text\":\"\xff\"}", `request body must be valid UTF-8`},
		{"/api/rooms/lobby/messages", `[]`, `request body must be a JSON object`},
		{"/api/rooms/lobby/messages", ``, `request body must be a JSON object`},
		{"/api/rooms/lobby/messages", `{"text":"hi"} x`, `trailing data after the JSON object`},
		{"/api/rooms/lobby/messages", `{"text":"hi"`, `malformed JSON: the body ends in the middle of a value`},
		{"/api/rooms/lobby/messages", `{"text" "hi"}`, `malformed JSON at byte 8: expected ':' after the key`},
	} {
		req, _ := http.NewRequest("POST", srv.URL+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+alice.Token)
		resp := alice.Raw(req)
		var e struct{ Error string }
		err := json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != 400 || err != nil || e.Error != tc.want {
			t.Errorf("%s %q: %d %q, want 400 %q", tc.path, tc.body, resp.StatusCode, e.Error, tc.want)
		}
	}
}

// What the strict checks must not refuse: surrogate pairs, escaped
// backslashes that only look like escapes, U+FFFD itself, and keys that
// differ.
func TestStrictJSONStillTakesGoodBodies(t *testing.T) {
	srv := chattest.Start(t)
	alice := srv.Login(t, "alice")
	alice.Join("lobby")
	for _, tc := range []struct{ body, want string }{
		{`{"text":"\ud83d\ude00 pair"}`, "😀 pair"},
		{`{"text":"\uD83D\uDE00 upper case"}`, "😀 upper case"},
		{`{"text":"\\ud800 is text"}`, `\ud800 is text`},
		{`{"text":"\\\ud83d\ude00"}`, `\😀`},
		{`{"text":"\ufffd and �"}`, "� and �"},
		{`{"text":"caf\u00e9 café"}`, "café café"},
		{` {"text" : "spaced"} ` + "\n", "spaced"},
	} {
		req, _ := http.NewRequest("POST", srv.URL+"/api/rooms/lobby/messages", strings.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+alice.Token)
		resp := alice.Raw(req)
		var e chattest.Event
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err := json.Unmarshal(raw, &e); resp.StatusCode != 201 || err != nil || e.Text != tc.want {
			t.Errorf("%q: %d %s; want 201 with text %q", tc.body, resp.StatusCode, raw, tc.want)
		}
	}
}

// A text is stored and delivered exactly as sent, and however it looks it
// arrives as exactly one event: JSON escapes the newlines and carriage
// returns that would otherwise end the data line.
func TestWireFormatCannotBeForged(t *testing.T) {
	srv := chattest.Start(t)
	alice, bob := srv.Login(t, "alice"), srv.Login(t, "bob")
	alice.Join("lobby")
	bob.Join("lobby")
	stream := bob.Stream("")
	stream.Ready()
	texts := []string{
		"line one\nline two",
		"cr\rlf\r\n\r\nevent: private\ndata: {\"forged\":true}\n\n",
		"id: 999999\nretry: 1\n: comment\ndata: x",
		"emoji 👋🏽 and ünïcödé — \u2028\u2029 end",
		"<img src=x onerror=alert(1)>",
		strings.Repeat("長", 4000),
	}
	for _, text := range texts {
		sent := alice.Say("lobby", text)
		f := stream.Next()
		for f.Kind != "message" {
			f = stream.Next()
		}
		if f.ID != sent.ID || f.Event.Text != text || f.Event != sent {
			t.Fatalf("sent %q (id %s), stream gave id %q text %q", text, sent.ID, f.ID, f.Event.Text)
		}
		if strings.Count(f.Data, "\n") != 0 {
			t.Fatalf("data spans lines: %q", f.Data)
		}
	}
	var page struct{ Messages []chattest.Event }
	alice.MustDo("GET", "/api/rooms/lobby/messages", nil, &page, 200)
	for i, text := range texts {
		if page.Messages[i].Text != text {
			t.Fatalf("history %d: %q, want %q", i, page.Messages[i].Text, text)
		}
	}
}

func TestStreamHeaders(t *testing.T) {
	srv := chattest.Start(t)
	alice := srv.Login(t, "alice")
	req, _ := http.NewRequest("GET", srv.URL+"/api/stream?stream=bob", nil)
	req.Header.Set("Authorization", "Bearer "+alice.Token)
	req.Header.Set("Accept-Encoding", "gzip")
	s := chattest.OpenStream(t, req)
	if f := s.Expect("ready", nil); f.Event.User != "alice" {
		t.Fatalf("asked for bob's stream, got %q's", f.Event.User)
	}
	h := s.Resp.Header
	for k, want := range map[string]string{
		"Content-Type":      "text/event-stream",
		"Cache-Control":     "no-cache",
		"X-Accel-Buffering": "no",
		"Content-Encoding":  "",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
}

func TestHeartbeatKeepsIdleStreamsAlive(t *testing.T) {
	srv := chattest.Start(t, chattest.WithBroker(broker.Config{Heartbeat: 20 * time.Millisecond}))
	alice := srv.Login(t, "alice")
	req, _ := http.NewRequest("GET", srv.URL+"/api/stream", nil)
	req.Header.Set("Authorization", "Bearer "+alice.Token)
	resp := alice.Raw(req)
	defer resp.Body.Close()
	buf := make([]byte, 0, 4096)
	chattest.Eventually(t, "a heartbeat comment", func() bool {
		chunk := make([]byte, 512)
		n, err := resp.Body.Read(chunk)
		buf = append(buf, chunk[:n]...)
		return err != nil || strings.Contains(string(buf), "\n: keepalive\n")
	})
	if !strings.Contains(string(buf), "\n: keepalive\n") {
		t.Fatalf("stream ended without a heartbeat: %q", buf)
	}
}
