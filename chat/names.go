package chat

import (
	"strings"
	"unicode/utf8"
)

// Limits of the contract.
const (
	MaxUsernameLen = 32
	MaxRoomLen     = 64
	MaxTextLen     = 4000 // Unicode code points
	MaxPasswordLen = 72   // bcrypt ignores anything longer
	DefaultLimit   = 50
	MaxLimit       = 500
	// DefaultRoomsLimit is the size of a page of GET /api/rooms.
	DefaultRoomsLimit = 100
)

// ValidUsername reports whether name is 1–32 of A–Z a–z 0–9 _ -.
func ValidUsername(name string) bool {
	return len(name) >= 1 && len(name) <= MaxUsernameLen && onlyNameChars(name, "_-")
}

// ValidRoom reports whether room is 1–64 of A–Z a–z 0–9 _ - . and neither
// "." nor "..", which proxies collapse as path segments.
func ValidRoom(room string) bool {
	return len(room) >= 1 && len(room) <= MaxRoomLen && room != "." && room != ".." &&
		onlyNameChars(room, "_-.")
}

func onlyNameChars(s, extra string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte(extra, c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// CheckText validates a message text: valid UTF-8, 1–4,000 code points and
// not only whitespace. The text itself is kept exactly as given.
func CheckText(text string) error {
	if !utf8.ValidString(text) {
		return Errorf(EINVALID, "text must be valid UTF-8")
	}
	if strings.TrimSpace(text) == "" {
		return Errorf(EINVALID, "text must not be empty")
	}
	if utf8.RuneCountInString(text) > MaxTextLen {
		return Errorf(EINVALID, "text must be at most %d characters", MaxTextLen)
	}
	return nil
}

// ParseMention splits a room text of the form "@name rest" into the
// recipient and the private text. ok is false when the text is not a
// mention, so it is an ordinary room message.
func ParseMention(text string) (to, rest string, ok bool) {
	if !strings.HasPrefix(text, "@") {
		return "", "", false
	}
	name, rest, found := strings.Cut(text[1:], " ")
	if !found || !ValidUsername(name) {
		return "", "", false
	}
	return name, rest, true
}
