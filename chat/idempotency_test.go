package chat_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ssechat/ssechat/chat"
)

func TestCheckIdempotencyKey(t *testing.T) {
	for key, ok := range map[string]bool{
		"a":                        true,
		strings.Repeat("k", 128):   true,
		"clé n° 1 ✓":               true,
		`with spaces and "quotes"`: true,
		"":                         false,
		strings.Repeat("k", 129):   false,
		"bad\xff":                  false,
		"tab\there":                false,
		"c1\u0085":                 false,
		"del\x7f":                  false,
	} {
		if err := chat.CheckIdempotencyKey(key); (err == nil) != ok || (err != nil && chat.ErrorCode(err) != chat.EINVALID) {
			t.Errorf("CheckIdempotencyKey(%q) = %v, want ok %v", key, err, ok)
		}
	}
}

// Parts are told apart however they split: a room and text are never
// mistaken for another room and text that concatenate the same.
func TestRequestDigestSeparatesParts(t *testing.T) {
	a := chat.RequestDigest("room", "ab", "c")
	for _, other := range [][]string{{"room", "a", "bc"}, {"room", "abc"}, {"room", "ab", "c", ""}, {"user", "ab", "c"}} {
		if bytes.Equal(a, chat.RequestDigest(other...)) {
			t.Errorf("%q and %q share a digest", []string{"room", "ab", "c"}, other)
		}
	}
	if !bytes.Equal(a, chat.RequestDigest("room", "ab", "c")) {
		t.Error("the digest of one request changes")
	}
}
