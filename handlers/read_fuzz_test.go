package handlers

import (
	"strings"
	"testing"
)

// FuzzParseEventID checks the parser of a read mark's id: digits only (no
// sign, no space), in int64's range, exactly as the reference reads them.
func FuzzParseEventID(f *testing.F) {
	for _, seed := range []string{
		"", "0", "1", "42", "007", "-1", "-0", "+7", " 5", "5 ", "1e3", "0x10", "1_000", "abc",
		"9223372036854775807", "9223372036854775808", "99999999999999999999", "\xff", "٣",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		id, ok := parseEventID(v)
		want, wantOK := refDecimal(v, 64)
		wantOK = wantOK && !strings.ContainsAny(v, "+-")
		if ok != wantOK || ok && id != want {
			t.Fatalf("parseEventID(%q) = %d, %v; reference %d, %v", v, id, ok, want, wantOK)
		}
		if ok && id < 0 {
			t.Fatalf("parseEventID(%q) = %d: negative", v, id)
		}
	})
}
