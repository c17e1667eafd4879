package handlers

import (
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/ssechat/ssechat/chat"
)

// refDecimal is the slow reference of a decimal integer as strconv takes
// it: an optional sign, then ASCII digits only, in range.
func refDecimal(v string, bitSize int) (int64, bool) {
	digits := strings.TrimLeft(v, "+-")
	if len(v)-len(digits) > 1 || digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, bitSize)
	return n, err == nil
}

// FuzzParseResume checks the Last-Event-ID parser: "" is no resume point;
// anything else is either a non-negative event id (Given, never also
// Malformed) or Malformed, exactly as the reference says.
func FuzzParseResume(f *testing.F) {
	for _, seed := range []string{
		"", "0", "1", "42", "-1", "-0", "+7", "007", " 5", "5 ", "1e3", "0x10", "1_000", "abc",
		"9223372036854775807", "9223372036854775808", "-9223372036854775808", "\xff", "٣",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		r := parseResume(v)
		if v == "" {
			if r.Given || r.Malformed || r.After != 0 {
				t.Fatalf("parseResume(\"\") = %+v, want the zero value", r)
			}
			return
		}
		if r.Given == r.Malformed {
			t.Fatalf("parseResume(%q) = %+v: exactly one of Given and Malformed", v, r)
		}
		id, ok := refDecimal(v, 64)
		ok = ok && id >= 0
		if r.Given != ok || r.Given && r.After != id {
			t.Fatalf("parseResume(%q) = %+v, reference %d %v", v, r, id, ok)
		}
		if r.Malformed && r.After != 0 {
			t.Fatalf("parseResume(%q) = %+v: malformed with a position", v, r)
		}
	})
}

// queryContext is a gin context for GET /?rawQuery.
func queryContext(rawQuery string) *gin.Context {
	return &gin.Context{Request: &http.Request{Method: "GET", URL: &url.URL{Path: "/", RawQuery: rawQuery}, Header: http.Header{}}}
}

// refLimit is the reference of ?limit=: absent is def, else an integer
// from 1 to chat.MaxLimit.
func refLimit(q url.Values, def int) (int, bool) {
	vs, present := q["limit"]
	if !present {
		return def, true
	}
	n, ok := refDecimal(vs[0], strconv.IntSize)
	if !ok || n < 1 || n > chat.MaxLimit {
		return 0, false
	}
	return int(n), true
}

// FuzzPageParams checks ?limit= and ?before= of the history pages against
// the reference over url.ParseQuery: a refusal is EINVALID, and what is
// taken is in range.
func FuzzPageParams(f *testing.F) {
	for _, seed := range []string{
		"", "limit=10", "limit=0", "limit=500", "limit=501", "limit=-1", "limit=", "limit", "before=5",
		"before=0", "before=-3", "before=9223372036854775807", "before=9223372036854775808", "limit=1&limit=x",
		"limit=%31%30", "limit=+5", "limit=5;before=3", "before=1&before=2&limit=50", "limit=1e2", "%zz=1&limit=2",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		before, limit, err := pageParams(queryContext(rawQuery))
		q, _ := url.ParseQuery(rawQuery)
		wantLimit, ok := refLimit(q, chat.DefaultLimit)
		var wantBefore int64
		if vs, present := q["before"]; present {
			n, okBefore := refDecimal(vs[0], 64)
			ok = ok && okBefore && n >= 1
			wantBefore = n
		}
		if (err == nil) != ok {
			t.Fatalf("pageParams(%q): err %v, reference ok %v", rawQuery, err, ok)
		}
		if err != nil {
			if chat.ErrorCode(err) != chat.EINVALID || before != 0 || limit != 0 {
				t.Fatalf("pageParams(%q) = %d, %d, %v", rawQuery, before, limit, err)
			}
			return
		}
		if limit != wantLimit || before != wantBefore || limit < 1 || limit > chat.MaxLimit || before < 0 || before == math.MinInt64 {
			t.Fatalf("pageParams(%q) = %d, %d; reference %d, %d", rawQuery, before, limit, wantBefore, wantLimit)
		}
	})
}

// FuzzRoomPageParams checks ?limit= and ?after= of GET /api/rooms the
// same way: after is "" or a valid room name.
func FuzzRoomPageParams(f *testing.F) {
	for _, seed := range []string{
		"", "limit=100", "limit=0", "limit=501", "after=lobby", "after=", "after=..", "after=.", "after=a%2Fb",
		"after=a b", "after=" + strings.Repeat("r", 65), "limit=2&after=x&after=..", "after=%ff", "limit=%2b3",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		checkNamePage(t, "roomPageParams", roomPageParams, chat.DefaultRoomsLimit, chat.ValidRoom, rawQuery)
	})
}

// FuzzMemberPageParams checks ?limit= and ?after= of GET
// /api/rooms/{room}/members: after is "" or a valid username.
func FuzzMemberPageParams(f *testing.F) {
	for _, seed := range []string{
		"", "limit=500", "limit=0", "limit=501", "after=alice", "after=", "after=a.b", "after=a%20b",
		"after=" + strings.Repeat("u", 33), "limit=2&after=x&after=..", "after=%ff", "limit=%2b3", "after=Bob-_1",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		checkNamePage(t, "memberPageParams", memberPageParams, chat.MaxLimit, chat.ValidUsername, rawQuery)
	})
}

// checkNamePage checks a parser of ?limit= and ?after= (a name cursor)
// against the reference over url.ParseQuery.
func checkNamePage(t *testing.T, fn string, parse func(*gin.Context) (string, int, error), def int, valid func(string) bool, rawQuery string) {
	after, limit, err := parse(queryContext(rawQuery))
	q, _ := url.ParseQuery(rawQuery)
	wantLimit, ok := refLimit(q, def)
	wantAfter := q.Get("after")
	ok = ok && (wantAfter == "" || valid(wantAfter))
	if (err == nil) != ok {
		t.Fatalf("%s(%q): err %v, reference ok %v", fn, rawQuery, err, ok)
	}
	if err != nil {
		if chat.ErrorCode(err) != chat.EINVALID || after != "" || limit != 0 {
			t.Fatalf("%s(%q) = %q, %d, %v", fn, rawQuery, after, limit, err)
		}
		return
	}
	if after != wantAfter || limit != wantLimit {
		t.Fatalf("%s(%q) = %q, %d; reference %q, %d", fn, rawQuery, after, limit, wantAfter, wantLimit)
	}
}
