package chat

import (
	"crypto/sha256"
	"encoding/binary"
	"time"
	"unicode"
	"unicode/utf8"
)

// IdempotencyHeader is the request header that makes a message POST
// idempotent.
const IdempotencyHeader = "Idempotency-Key"

// MaxIdempotencyKey is the longest Idempotency-Key, in bytes.
const MaxIdempotencyKey = 128

// IdempotencyTTL is how long a key answers with the message it first
// posted; after it the key may post anew.
const IdempotencyTTL = 24 * time.Hour

// CheckIdempotencyKey accepts any non-empty key of at most
// MaxIdempotencyKey bytes of valid UTF-8 without control characters: UUIDs,
// ULIDs, counters and whatever else clients make up.
func CheckIdempotencyKey(key string) error {
	switch {
	case key == "":
		return Errorf(EINVALID, "%s must not be empty", IdempotencyHeader)
	case len(key) > MaxIdempotencyKey:
		return Errorf(EINVALID, "%s must be at most %d bytes", IdempotencyHeader, MaxIdempotencyKey)
	case !utf8.ValidString(key):
		return Errorf(EINVALID, "%s must be valid UTF-8", IdempotencyHeader)
	}
	for _, r := range key {
		if unicode.IsControl(r) {
			return Errorf(EINVALID, "%s must not contain control characters", IdempotencyHeader)
		}
	}
	return nil
}

// Once is an Idempotency-Key as a write carries it: the key, unique per
// user, and a digest of what the write asked for, which tells a repeat
// from the key's reuse for another message. The zero Once is no key.
type Once struct {
	User    string
	Key     string
	Request []byte // RequestDigest of the request that first used the key
}

// Given reports whether the write carries a key.
func (o Once) Given() bool { return o.Key != "" }

// NewOnce is user's key for the request described by parts (its route,
// target and text, say).
func NewOnce(user, key string, parts ...string) Once {
	return Once{User: user, Key: key, Request: RequestDigest(parts...)}
}

// RequestDigest is the SHA-256 of parts, each prefixed by its length so
// that no two lists of parts share a digest by their concatenation.
func RequestDigest(parts ...string) []byte {
	h := sha256.New()
	var n [8]byte
	for _, p := range parts {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return h.Sum(nil)
}

// KeyedEvent is a key a store holds and the event it was stored with.
type KeyedEvent struct {
	Once
	Event Event
}
