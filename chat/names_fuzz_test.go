package chat_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/ssechat/ssechat/chat"
)

// refNameChars is the slow reference of a name's alphabet: ASCII letters,
// digits and the extra punctuation, checked rune by rune.
func refNameChars(s, extra string) bool {
	for _, r := range s {
		if !(r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)) || strings.ContainsRune(extra, r)) {
			return false
		}
	}
	return utf8.ValidString(s)
}

// FuzzValidUsername checks ValidUsername against the reference: 1–32
// bytes of A–Z a–z 0–9 _ -.
func FuzzValidUsername(f *testing.F) {
	for _, seed := range []string{
		"", "a", "alice", "Alice_-9", "a b", "é", "a\x00", strings.Repeat("a", 32), strings.Repeat("a", 33),
		"\xff", "a.b", "@alice", "ａ", "-", "_",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got := chat.ValidUsername(name)
		want := len(name) >= 1 && len(name) <= chat.MaxUsernameLen && refNameChars(name, "_-")
		if got != want {
			t.Fatalf("ValidUsername(%q) = %v, want %v", name, got, want)
		}
	})
}

// FuzzValidRoom checks ValidRoom against the reference: 1–64 bytes of
// A–Z a–z 0–9 _ - . and neither "." nor "..".
func FuzzValidRoom(f *testing.F) {
	for _, seed := range []string{
		"", "lobby", ".", "..", "...", ".a", "a/b", "a%2Fb", "a b", strings.Repeat("r", 64), strings.Repeat("r", 65),
		"\xff", "ü", "room-1_x.y",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, room string) {
		got := chat.ValidRoom(room)
		want := len(room) >= 1 && len(room) <= chat.MaxRoomLen && room != "." && room != ".." &&
			refNameChars(room, "_-.")
		if got != want {
			t.Fatalf("ValidRoom(%q) = %v, want %v", room, got, want)
		}
		if got && strings.ContainsAny(room, "/?#%\\ ") {
			t.Fatalf("ValidRoom took %q, which is not a plain path segment", room)
		}
	})
}

// FuzzCheckText checks CheckText against the reference: valid UTF-8,
// not only whitespace, at most 4,000 code points; a refusal is EINVALID.
func FuzzCheckText(f *testing.F) {
	for _, seed := range []string{
		"", " ", "\t\n\r\v\f", "\u00a0", "\u2003", "\u3000", "\ufeff", "hi", " hi ", "\xff", "a\xc3",
		"\u200b", strings.Repeat("é", 4000), strings.Repeat("é", 4001), strings.Repeat("x", 4000) + " ",
		"\ud7ff", "\U0010ffff", "\x00",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		err := chat.CheckText(text)
		nonSpace := false
		for _, r := range text {
			if !unicode.IsSpace(r) {
				nonSpace = true
			}
		}
		want := utf8.ValidString(text) && nonSpace && utf8.RuneCountInString(text) <= chat.MaxTextLen
		if (err == nil) != want {
			t.Fatalf("CheckText(%q) = %v, want ok %v", text, err, want)
		}
		if err != nil && chat.ErrorCode(err) != chat.EINVALID {
			t.Fatalf("CheckText(%q): code %q, want %q", text, chat.ErrorCode(err), chat.EINVALID)
		}
	})
}

// FuzzParseMentionRefusal complements FuzzParseMention (chat_test.go),
// which looks only at the mentions taken: a text refused returns nothing
// and does not have the "@name rest" shape with a valid name; one taken
// has a valid name and a rest that is a suffix of the input.
func FuzzParseMentionRefusal(f *testing.F) {
	for _, seed := range []string{
		"@bob hi", "@bob", "@bob ", "@ hi", "@@bob hi", "bob hi", "@bob\thi", "@bob  two spaces", "@bob-x_1 hi",
		"@b\xffb hi", "@" + strings.Repeat("a", 32) + " x", "@" + strings.Repeat("a", 33) + " x", "", "@",
		"@bob @carol hi", "@bob\u00a0hi", " @bob hi",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		to, rest, ok := chat.ParseMention(text)
		if !ok {
			if to != "" || rest != "" {
				t.Fatalf("ParseMention(%q) not ok but returned %q, %q", text, to, rest)
			}
			if name, _, found := strings.Cut(strings.TrimPrefix(text, "@"), " "); strings.HasPrefix(text, "@") && found && chat.ValidUsername(name) {
				t.Fatalf("ParseMention(%q) refused a mention of %q", text, name)
			}
			return
		}
		if !chat.ValidUsername(to) {
			t.Fatalf("ParseMention(%q) = %q, not a valid username", text, to)
		}
		if !strings.HasSuffix(text, rest) {
			t.Fatalf("ParseMention(%q): rest %q is not a suffix", text, rest)
		}
		if text != "@"+to+" "+rest {
			t.Fatalf("ParseMention(%q) = %q, %q: does not rebuild the text", text, to, rest)
		}
	})
}
