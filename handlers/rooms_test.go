package handlers_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/ssechat/ssechat/internal/chattest"
)

type roomPage struct {
	Rooms []struct {
		Room    string `json:"room"`
		Members int    `json:"members"`
	} `json:"rooms"`
	Next *string `json:"next"`
}

func (p roomPage) names() []string {
	var out []string
	for _, r := range p.Rooms {
		out = append(out, r.Room)
	}
	return out
}

// GET /api/rooms is paged by name: limit (1-500, default 100) rooms after
// the after cursor, and next, the cursor of the following page ("" on the
// last). Walking the pages lists every room once, in order.
func TestRoomsArePaged(t *testing.T) {
	srv := chattest.Start(t)
	alice := srv.Login(t, "alice")
	var want []string
	for i := range 101 {
		room := fmt.Sprintf("r%03d", i)
		alice.Join(room)
		want = append(want, room)
	}
	alice.Join("A-first") // byte order: upper case before lower
	want = append([]string{"A-first"}, want...)

	var page roomPage
	alice.MustDo("GET", "/api/rooms", nil, &page, 200)
	if len(page.Rooms) != 100 || page.Next == nil || *page.Next != "r098" {
		t.Fatalf("first page: %d rooms, next %v; want 100 and r098", len(page.Rooms), page.Next)
	}
	if !slices.Equal(page.names(), want[:100]) || page.Rooms[0].Members != 1 {
		t.Fatalf("first page %v", page.names())
	}

	for _, limit := range []int{1, 7, 500} {
		var got []string
		after := ""
		for pages := 0; ; pages++ {
			var p roomPage
			alice.MustDo("GET", fmt.Sprintf("/api/rooms?limit=%d&after=%s", limit, after), nil, &p, 200)
			if len(p.Rooms) > limit || p.Next == nil {
				t.Fatalf("limit %d: %d rooms, next %v", limit, len(p.Rooms), p.Next)
			}
			got = append(got, p.names()...)
			if *p.Next == "" {
				break
			}
			if *p.Next != p.Rooms[len(p.Rooms)-1].Room {
				t.Fatalf("limit %d: next %q is not the page's last room %q", limit, *p.Next, p.Rooms[len(p.Rooms)-1].Room)
			}
			after = *p.Next
			if pages > len(want) {
				t.Fatalf("limit %d: the pages never end", limit)
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("limit %d: pages list %v, want %v", limit, got, want)
		}
	}

	// A cursor that names no room starts after where it would be.
	alice.MustDo("GET", "/api/rooms?limit=2&after=r0505", nil, &page, 200)
	if !slices.Equal(page.names(), []string{"r051", "r052"}) || *page.Next != "r052" {
		t.Fatalf("after r0505: %v next %q", page.names(), *page.Next)
	}
	alice.MustDo("GET", "/api/rooms?after=r100", nil, &page, 200)
	if len(page.Rooms) != 0 || page.Rooms == nil || *page.Next != "" {
		t.Fatalf("after the last room: %+v", page)
	}

	for _, q := range []string{"limit=0", "limit=501", "limit=ten", "after=no%20spaces", "after=.."} {
		var e struct{ Error string }
		alice.MustDo("GET", "/api/rooms?"+q, nil, &e, http.StatusBadRequest)
		if e.Error == "" {
			t.Errorf("%s: no JSON error", q)
		}
	}
}
