package handlers

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseJSON checks parseJSON against encoding/json and a slow
// reference (refWalk): it never panics; it takes exactly the well-formed
// objects without a key twice (in any case), without a surrogate escape
// out of pair and not nested too deep; what it takes encoding/json
// decodes the same; and a string it takes holds a U+FFFD only if the body
// spelled one.
func FuzzParseJSON(f *testing.F) {
	for _, seed := range []string{
		`{"text":"hi"}`, `{"text":"\ud83d\ude00"}`, `{"text":"\ud800"}`, `{"text":"\\ud800"}`,
		`{"text":"a","TEXT":"b"}`, `{"text":"a","extra":1}`, `{"text":{"a":[1,{"b":null}]}}`,
		"{\"text\":\"\xff\"}", `{"text":"\ufffd"}`, `[]`, ``, `{"text":"hi"} {}`, `{"text":"\u`,
		`{"username":"a","password":"b"}`, `{"text":"x\\\ud83d\ude00"}`, `{"k":1,"\u212a":2}`,
		`{"a":-0.5e+3,"b":[true,false,null],"c":"\n\t\/"}`, `{"a":01}`, `{"a":1.}`, `{"a":"\x"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var strict struct {
			Text *string `json:"text"`
		}
		err := parseJSON(body, &strict)
		if !utf8.Valid(body) {
			if err == nil {
				t.Fatalf("took %q, which is not UTF-8", body)
			}
			return
		}
		shapeErr := checkJSON(body)
		ref := refWalk(body)
		valid := json.Valid(body) && ref.object
		switch {
		case shapeErr == nil && !(valid && ref.unique && ref.depth <= maxJSONDepth):
			t.Fatalf("checkJSON took %q: valid %v, %+v", body, valid, ref)
		case shapeErr != nil && valid && ref.unique && ref.depth <= maxJSONDepth && !mayHaveSurrogate(body):
			t.Fatalf("checkJSON refused %q: %v", body, shapeErr)
		}
		if shapeErr != nil {
			return
		}
		for _, str := range ref.strings {
			if strings.ContainsRune(str, utf8.RuneError) && !bytes.ContainsRune(body, utf8.RuneError) &&
				!bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`)) {
				t.Fatalf("took %q, whose string %q has a U+FFFD it did not spell", body, str)
			}
		}
		var lenient struct {
			Text *string `json:"text"`
		}
		lerr := json.Unmarshal(body, &lenient)
		if err == nil && lerr != nil {
			t.Fatalf("took %q, which encoding/json refuses: %v", body, lerr)
		}
		if err == nil && ((strict.Text == nil) != (lenient.Text == nil) || strict.Text != nil && *strict.Text != *lenient.Text) {
			t.Fatalf("%q decoded differently", body)
		}
	})
}

// mayHaveSurrogate reports whether body has something like the escape of
// a surrogate (\uD800 to \uDFFF), ignoring whether the backslash is
// itself escaped.
func mayHaveSurrogate(body []byte) bool {
	lower := bytes.ToLower(body)
	for i := bytes.Index(lower, []byte(`\ud`)); i >= 0; {
		if i+3 < len(lower) && strings.IndexByte("89abcdef", lower[i+3]) >= 0 {
			return true
		}
		next := bytes.Index(lower[i+1:], []byte(`\ud`))
		if next < 0 {
			break
		}
		i += 1 + next
	}
	return false
}

type refResult struct {
	object, unique bool
	depth          int
	strings        []string
}

// refWalk is the slow reference: encoding/json's tokenizer, a map of
// folded keys per object, every string decoded.
func refWalk(body []byte) refResult {
	r := refResult{unique: true}
	if !json.Valid(body) {
		return r
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var walk func(depth int)
	walk = func(depth int) {
		tok, _ := dec.Token()
		switch tok {
		case json.Delim('{'):
			r.depth = max(r.depth, depth)
			seen := map[string]bool{}
			for dec.More() {
				k, _ := dec.Token()
				key := k.(string)
				r.strings = append(r.strings, key)
				if seen[foldKey(key)] {
					r.unique = false
				}
				seen[foldKey(key)] = true
				walk(depth + 1)
			}
			dec.Token()
		case json.Delim('['):
			r.depth = max(r.depth, depth)
			for dec.More() {
				walk(depth + 1)
			}
			dec.Token()
		default:
			if s, ok := tok.(string); ok {
				r.strings = append(r.strings, s)
			}
		}
	}
	r.object = bytes.TrimLeft(body, " \t\r\n")[0] == '{'
	walk(1)
	return r
}

// BenchmarkParseJSON is the cost of the strict checks on the write path's
// typical body, against encoding/json alone.
func BenchmarkParseJSON(b *testing.B) {
	body := []byte(`{"text":"hello everyone, the meeting moved to 3 pm \ud83d\ude00"}`)
	b.Run("strict", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v struct {
				Text *string `json:"text"`
			}
			if err := parseJSON(body, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v struct {
				Text *string `json:"text"`
			}
			if err := json.NewDecoder(bytes.NewReader(body)).Decode(&v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
