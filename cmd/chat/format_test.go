package main

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/ssechat/ssechat/client"
)

// Texts from others are printed as one line, and cannot drive the
// terminal: line breaks, escape sequences and bidi controls (which would
// reorder what follows them) are shown escaped.
func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"plain, café ✓":                "plain, café ✓",
		"two\nlines":                   `two\nlines`,
		"crlf\r\n":                     `crlf\r\n`,
		"tab\there":                    `tab\there`,
		"\x1b[2Jcleared":               `\x1b[2Jcleared`,
		"c1 \u009b31m":                 `c1 \x9b31m`,
		"sep\u2028para\u2029end":       `sep\u2028para\u2029end`,
		"del\x7f":                      `del\x7f`,
		"abc\u202egnp.exe":             `abc\u202egnp.exe`,
		"\u2066iso\u2069 \u200f\u061c": `\u2066iso\u2069 \u200f\u061c`,
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}

// --json adds "event" first to the stream's object, whatever it holds;
// every line is JSON, whatever the stream carried.
func TestJSONLine(t *testing.T) {
	ts := time.Date(2026, 11, 25, 19, 30, 20, 100e6, time.UTC)
	for _, c := range []struct {
		e    client.Event
		want string
	}{
		{client.Event{Kind: client.KindMessage, Data: `{"id":"3","room":"lobby","from":"bob","text":"hi","ts":"2026-11-25T19:30:20.105Z"}`},
			`{"event":"message","id":"3","room":"lobby","from":"bob","text":"hi","ts":"2026-11-25T19:30:20.105Z"}`},
		{client.Event{Kind: "future", Data: `{}`}, `{"event":"future"}`},
		{client.Event{Kind: "future", Data: ` { "a" : 1 } `}, `{"event":"future","a" : 1 }`},
		{client.Event{Kind: "future", Data: `[1,2]`}, `{"event":"future","data":[1,2]}`},
		// Not JSON: a string, so that the line is JSON all the same.
		{client.Event{Kind: "future", Data: `hello "you"`}, `{"event":"future","data":"hello \"you\""}`},
		{client.Event{Kind: "future", Data: `{broken`}, `{"event":"future","data":"{broken"}`},
		// History: no stream data; encoded as the stream has it.
		{client.Event{Kind: client.KindPrivate, ID: "5", From: "bob", To: "alice", Text: "<x>", TS: ts},
			`{"event":"private","id":"5","from":"bob","to":"alice","text":"\u003cx\u003e","ts":"2026-11-25T19:30:20.100Z"}`},
	} {
		got := jsonLine(c.e)
		if got != c.want {
			t.Errorf("jsonLine(%+v) =\n%s\nwant\n%s", c.e, got, c.want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("jsonLine(%+v) = %s, not JSON", c.e, got)
		}
	}
}

// One filter, one position file, however it is written.
func TestFilterKey(t *testing.T) {
	key := func(args ...string) string {
		f, err := parseFilter(args)
		if err != nil {
			t.Fatal(err)
		}
		return f.key()
	}
	if a, b := key("ops", "@Bob", "#dev", "@"), key("@", "dev", "@bob", "OPS", "ops"); a != b || a != "#dev,#ops,@,@bob" {
		t.Errorf("keys %q and %q, want both #dev,#ops,@,@bob", a, b)
	}
	if key() != "all" || key("all") == "all" {
		t.Errorf("no filter is %q, the room all is %q: they must differ", key(), key("all"))
	}
	if _, err := parseFilter([]string{"#"}); err == nil {
		t.Error(`parseFilter("#") took an empty room`)
	}
}

// rooms shows unread counts where the server gives them.
func TestWriteRoomsUnread(t *testing.T) {
	var b bytes.Buffer
	rooms := []client.RoomInfo{{Room: "dev", Members: 3, Read: "7", Unread: 2}, {Room: "ops", Members: 1}}
	if err := writeRooms(&b, rooms, []string{"dev", "ops"}, false); err != nil {
		t.Fatal(err)
	}
	if want := "#dev  3 members  joined  2 unread\n#ops  1 member   joined\n"; b.String() != want {
		t.Errorf("rooms:\n%s\nwant:\n%s", b.String(), want)
	}
}
