package chat_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ssechat/ssechat/chat"
)

func TestEventJSONByKind(t *testing.T) {
	ts := time.Date(2026, 11, 25, 18, 36, 4, 456_789_000, time.FixedZone("x", 3600))
	cases := []struct {
		e    chat.Event
		want string
	}{
		{chat.Event{ID: 1 << 60, Kind: chat.KindMessage, Room: "lobby", From: "alice", Text: "hi", TS: ts},
			`{"id":"1152921504606846976","room":"lobby","from":"alice","text":"hi","ts":"2026-11-25T17:36:04.456Z"}`},
		{chat.Event{ID: 2, Kind: chat.KindPrivate, From: "alice", To: "bob", Text: "psst", TS: ts},
			`{"id":"2","from":"alice","to":"bob","text":"psst","ts":"2026-11-25T17:36:04.456Z"}`},
		{chat.Event{ID: 3, Kind: chat.KindJoin, Room: "lobby", User: "bob", TS: ts},
			`{"id":"3","room":"lobby","user":"bob","ts":"2026-11-25T17:36:04.456Z"}`},
		{chat.Event{ID: 4, Kind: chat.KindPresence, User: "bob", Status: chat.Online, TS: ts},
			`{"id":"4","user":"bob","status":"online","ts":"2026-11-25T17:36:04.456Z"}`},
		{chat.Event{ID: 5, Kind: chat.KindMembers, Room: "hall", Members: 500, Online: 0, TS: ts},
			`{"id":"5","room":"hall","members":500,"online":0,"ts":"2026-11-25T17:36:04.456Z"}`},
		{chat.Event{ID: 6, Kind: chat.KindRead, User: "bob", Room: "lobby", Read: 1 << 60, TS: ts},
			`{"id":"6","room":"lobby","read":"1152921504606846976","ts":"2026-11-25T17:36:04.456Z"}`},
		{chat.Event{ID: 7, Kind: chat.KindRead, User: "bob", To: "alice", Read: 2, TS: ts},
			`{"id":"7","with":"alice","read":"2","ts":"2026-11-25T17:36:04.456Z"}`},
	}
	for _, tc := range cases {
		got, err := json.Marshal(tc.e)
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: %s (%v), want %s", tc.e.Kind, got, err, tc.want)
		}
	}
}

func TestParseMention(t *testing.T) {
	cases := []struct {
		text, to, rest string
		ok             bool
	}{
		{"@bob hi there", "bob", "hi there", true},
		{"@bob  two spaces", "bob", " two spaces", true},
		{"@bob\nhi", "", "", false},
		{"@bob", "", "", false},
		{"@ bob hi", "", "", false},
		{"hi @bob", "", "", false},
		{"@b.o.b hi", "", "", false},
		{"@" + strings.Repeat("a", 33) + " hi", "", "", false},
	}
	for _, tc := range cases {
		to, rest, ok := chat.ParseMention(tc.text)
		if to != tc.to || rest != tc.rest || ok != tc.ok {
			t.Errorf("ParseMention(%q) = %q, %q, %v", tc.text, to, rest, ok)
		}
	}
}

func TestNames(t *testing.T) {
	for name, want := range map[string]bool{"a": true, "Alice_B-2": true, "": false, "al ice": false,
		"ünï": false, strings.Repeat("a", 32): true, strings.Repeat("a", 33): false, "a.b": false} {
		if got := chat.ValidUsername(name); got != want {
			t.Errorf("ValidUsername(%q) = %v", name, got)
		}
	}
	for room, want := range map[string]bool{"lobby": true, "a.b": true, "...": true, ".": false, "..": false,
		"": false, "a/b": false, "a b": false, strings.Repeat("r", 64): true, strings.Repeat("r", 65): false} {
		if got := chat.ValidRoom(room); got != want {
			t.Errorf("ValidRoom(%q) = %v", room, got)
		}
	}
}

func TestCheckText(t *testing.T) {
	for text, ok := range map[string]bool{"hi": true, "": false, " \n\t": false, "\xff": false,
		strings.Repeat("語", 4000): true, strings.Repeat("語", 4001): false, "line\r\nline": true} {
		if err := chat.CheckText(text); (err == nil) != ok {
			t.Errorf("CheckText(%.20q) = %v", text, err)
		}
	}
}

// FuzzParseMention: a mention's parts always rebuild the text, and its
// recipient is always a valid username.
func FuzzParseMention(f *testing.F) {
	for _, s := range []string{"@bob hi", "@bob", "@ x", "hello", "@a-b_c rest of it", "@\x00 x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		to, rest, ok := chat.ParseMention(text)
		if !ok {
			return
		}
		if !chat.ValidUsername(to) || "@"+to+" "+rest != text {
			t.Fatalf("ParseMention(%q) = %q, %q", text, to, rest)
		}
	})
}

// FuzzEventJSON: whatever the text, the encoded event is one line of
// valid JSON that decodes back to the same text — the SSE framing relies
// on it.
func FuzzEventJSON(f *testing.F) {
	for _, s := range []string{"hi", "a\nb", "a\rb", "data: x\n\nid: 9", "\u2028", "👋🏽"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		if !utf8.ValidString(text) {
			return
		}
		data, err := json.Marshal(chat.Event{ID: 7, Kind: chat.KindMessage, Room: "r", From: "a", Text: text})
		if err != nil {
			t.Fatal(err)
		}
		if strings.ContainsAny(string(data), "\r\n") {
			t.Fatalf("encoded event spans lines: %q", data)
		}
		var back struct{ Text string }
		if err := json.Unmarshal(data, &back); err != nil || back.Text != text {
			t.Fatalf("round trip of %q gave %q (%v)", text, back.Text, err)
		}
	})
}

func TestReadScope(t *testing.T) {
	for _, k := range []chat.ReadKey{{Room: "lobby"}, {With: "bob"}} {
		room, with, ok := chat.ParseReadScope(chat.ReadScope(k.Room, k.With))
		if !ok || room != k.Room || with != k.With {
			t.Errorf("%+v: parsed back as %q, %q, %v", k, room, with, ok)
		}
	}
	for _, s := range []string{"", "lobby", "room:", "user:", "chat:lobby"} {
		if _, _, ok := chat.ParseReadScope(s); ok {
			t.Errorf("chat.ParseReadScope(%q) accepted it", s)
		}
	}
}
