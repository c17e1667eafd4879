package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ssechat/ssechat/chat"
)

// maxJSONDepth bounds the nesting of a request body. Ours are flat; the
// bound only keeps a hostile body from making the check below recurse
// 32,000 deep.
const maxJSONDepth = 32

// parseJSON decodes body, which must be exactly one JSON object, into v.
// encoding/json is lenient where a chat server must not be, so the body is
// checked first:
//   - it must be valid UTF-8 (encoding/json turns bad bytes into U+FFFD);
//   - no \u escape may name half of a surrogate pair alone ("\ud800"),
//     which encoding/json also turns into U+FFFD: the text would not be
//     the one sent;
//   - no object may repeat a key, in any case ({"text":"a","TEXT":"b"}
//     sets one field twice, the last one winning);
//   - v's struct must have every field the body names.
//
// Errors are *chat.Error with messages for people: never a Go type.
func parseJSON(body []byte, v any) error {
	if !utf8.Valid(body) {
		return chat.Errorf(chat.EINVALID, "request body must be valid UTF-8")
	}
	if err := checkJSON(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	return nil
}

// checkJSON checks the body, valid UTF-8, in one pass: one JSON object,
// well formed, no key twice in any object (see foldKey), no \u escape of a
// lone surrogate, nothing after it. On a message body it adds about a
// quarter to what decoding costs, and two allocations
// (BenchmarkParseJSON); a first version that walked json.Decoder.Token
// more than doubled it. FuzzParseJSON holds it to encoding/json.
func checkJSON(body []byte) error {
	s := jsonScanner{b: body}
	s.space()
	if s.i == len(s.b) || s.b[s.i] != '{' {
		return chat.Errorf(chat.EINVALID, "request body must be a JSON object")
	}
	if err := s.object(1); err != nil {
		return err
	}
	s.space()
	if s.i != len(s.b) {
		return chat.Errorf(chat.EINVALID, "trailing data after the JSON object")
	}
	return nil
}

type jsonScanner struct {
	b []byte
	i int
}

func (s *jsonScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScanner) fail(what string) error {
	if s.i >= len(s.b) {
		return chat.Errorf(chat.EINVALID, "malformed JSON: the body ends in the middle of a value")
	}
	return chat.Errorf(chat.EINVALID, "malformed JSON at byte %d: %s", s.i, what)
}

func (s *jsonScanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *jsonScanner) value(depth int) error {
	s.space()
	switch c := s.peek(); {
	case c == '{':
		return s.object(depth + 1)
	case c == '[':
		return s.array(depth + 1)
	case c == '"':
		_, err := s.str()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	}
	return s.fail("expected a value")
}

func (s *jsonScanner) object(depth int) error {
	if depth > maxJSONDepth {
		return chat.Errorf(chat.EINVALID, "JSON nested more than %d deep", maxJSONDepth)
	}
	s.i++ // {
	s.space()
	if s.peek() == '}' {
		s.i++
		return nil
	}
	var keys keySet
	for {
		s.space()
		if s.peek() != '"' {
			return s.fail("expected a string key")
		}
		start := s.i
		plain, err := s.str()
		if err != nil {
			return err
		}
		if err := keys.add(s.b[start:s.i], plain); err != nil {
			return err
		}
		s.space()
		if s.peek() != ':' {
			return s.fail("expected ':' after the key")
		}
		s.i++
		if err := s.value(depth); err != nil {
			return err
		}
		s.space()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.fail("expected ',' or '}'")
		}
	}
}

func (s *jsonScanner) array(depth int) error {
	if depth > maxJSONDepth {
		return chat.Errorf(chat.EINVALID, "JSON nested more than %d deep", maxJSONDepth)
	}
	s.i++ // [
	s.space()
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		if err := s.value(depth); err != nil {
			return err
		}
		s.space()
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.fail("expected ',' or ']'")
		}
	}
}

// str scans a string; plain reports that it is printable ASCII without
// escapes, so that its bytes are its text.
func (s *jsonScanner) str() (plain bool, err error) {
	s.i++ // "
	plain = true
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return plain, nil
		case c == '\\':
			plain = false
			if err := s.escape(); err != nil {
				return false, err
			}
		case c < 0x20:
			return false, s.fail("control character in a string")
		default:
			plain = plain && c < 0x80
			s.i++
		}
	}
	return false, s.fail("")
}

// escape scans one escape sequence. A \u escape of a high surrogate must
// be followed at once by one of a low surrogate; any other surrogate
// escape is refused: encoding/json would silently make it U+FFFD.
func (s *jsonScanner) escape() error {
	s.i++ // \
	switch s.peek() {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.i++
		return nil
	case 'u':
	default:
		return s.fail("invalid escape")
	}
	r := s.hex4(s.i + 1)
	if r < 0 {
		return s.fail("invalid \\u escape")
	}
	start := s.i - 1
	s.i += 5
	switch {
	case r >= 0xD800 && r <= 0xDBFF:
		if s.peek() == '\\' && s.i+1 < len(s.b) && s.b[s.i+1] == 'u' {
			if low := s.hex4(s.i + 2); low >= 0xDC00 && low <= 0xDFFF {
				s.i += 6
				return nil
			}
		}
		return errLoneSurrogate(s.b[start : start+6])
	case r >= 0xDC00 && r <= 0xDFFF:
		return errLoneSurrogate(s.b[start : start+6])
	}
	return nil
}

// hex4 reads the four hex digits at i; -1 if there are not four.
func (s *jsonScanner) hex4(i int) rune {
	if i+4 > len(s.b) {
		return -1
	}
	var r rune
	for _, c := range s.b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return -1
		}
	}
	return r
}

func (s *jsonScanner) literal(word string) error {
	if !bytes.HasPrefix(s.b[s.i:], []byte(word)) {
		return s.fail("expected a value")
	}
	s.i += len(word)
	return nil
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *jsonScanner) number() error {
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.peek() == '-' {
		s.i++
	}
	if s.peek() == '0' {
		s.i++
	} else if digits() == 0 {
		return s.fail("invalid number")
	}
	if s.peek() == '.' {
		s.i++
		if digits() == 0 {
			return s.fail("invalid number")
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if digits() == 0 {
			return s.fail("invalid number")
		}
	}
	return nil
}

// keySet holds the keys of one object, folded (see foldKey). Objects here
// have a key or two, so a short slice beats a map until it grows.
type keySet struct {
	list []string
	set  map[string]struct{}
}

// add records quoted, a key as it appears in the body with its quotes, or
// fails if the object had it already.
func (k *keySet) add(quoted []byte, plain bool) error {
	var folded string
	if plain {
		folded = foldASCII(quoted[1 : len(quoted)-1])
	} else {
		var key string
		if err := json.Unmarshal(quoted, &key); err != nil {
			return chat.Errorf(chat.EINVALID, "malformed JSON: invalid key")
		}
		folded = foldKey(key)
	}
	dup := false
	if k.set != nil {
		_, dup = k.set[folded]
		k.set[folded] = struct{}{}
	} else {
		dup = slices.Contains(k.list, folded)
		k.list = append(k.list, folded)
		if len(k.list) > 16 {
			k.set = make(map[string]struct{}, 2*len(k.list))
			for _, key := range k.list {
				k.set[key] = struct{}{}
			}
		}
	}
	if dup {
		var key string
		_ = json.Unmarshal(quoted, &key)
		return chat.Errorf(chat.EINVALID, "duplicate key %q", key)
	}
	return nil
}

// foldKey maps key to one spelling per class of keys that encoding/json
// matches to the same field (Unicode simple case folding, as
// bytes.EqualFold: "text", "TEXT" and "Text" are one key): each rune
// becomes the least rune it folds with.
func foldKey(key string) string {
	return strings.Map(func(r rune) rune {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		return least
	}, key)
}

// foldASCII is foldKey for ASCII: the least rune an ASCII letter folds
// with is its upper case (K also folds with the Kelvin sign U+212A, s
// with ſ U+017F, both above it).
func foldASCII(key []byte) string {
	b := make([]byte, len(key))
	for i, c := range key {
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		b[i] = c
	}
	return string(b)
}

func errLoneSurrogate(escape []byte) error {
	return chat.Errorf(chat.EINVALID, "request body must be valid Unicode: %s is half of a UTF-16 surrogate pair, not a character", escape)
}

// decodeError turns what Decode says about a well-formed body into a
// message for people: a field of the wrong type, or one the operation does
// not know.
func decodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		if typeErr.Field == "" {
			return chat.Errorf(chat.EINVALID, "request body must be a JSON object")
		}
		return chat.Errorf(chat.EINVALID, "field %q must be %s", typeErr.Field, jsonKind(typeErr.Type))
	}
	// DisallowUnknownFields has no error type of its own.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return chat.Errorf(chat.EINVALID, "unknown field %s", name)
	}
	return chat.Errorf(chat.EINVALID, "malformed JSON")
}

// jsonKind names the JSON a Go type is decoded from.
func jsonKind(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "of another type"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "of another type"
}
