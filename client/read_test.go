package client_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/ssechat/ssechat/client"
	"github.com/ssechat/ssechat/internal/chattest"
)

// MarkRead and MarkConversationRead send the contract's requests and read
// its answers. (Against a scripted server: the routes are being added to
// the server on another branch; the real-server tests come with them.)
func TestMarkRead(t *testing.T) {
	type request struct{ Method, Path, ID, Auth string }
	var got []request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			ID string `json:"id"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, `{"error":"bad body"}`, http.StatusBadRequest)
			return
		}
		got = append(got, request{r.Method, r.URL.Path, body.ID, r.Header.Get("Authorization")})
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/rooms/lobby/read":
			w.Write([]byte(`{"room":"lobby","read":"12","unread":3}`))
		default:
			w.Write([]byte(`{"with":"bob","read":"7","unread":0}`))
		}
	}))
	t.Cleanup(srv.Close)
	c := client.New(srv.URL, client.WithToken("tok"))
	t.Cleanup(c.CloseIdleConnections)

	room, err := c.MarkRead(testCtx(t), "lobby", "12")
	if err != nil || room != (client.ReadState{Room: "lobby", Read: "12", Unread: 3}) {
		t.Fatalf("MarkRead: %+v, %v", room, err)
	}
	conv, err := c.MarkConversationRead(testCtx(t), "bob", "7")
	if err != nil || conv != (client.ReadState{With: "bob", Read: "7"}) {
		t.Fatalf("MarkConversationRead: %+v, %v", conv, err)
	}
	want := []request{
		{"POST", "/api/rooms/lobby/read", "12", "Bearer tok"},
		{"POST", "/api/conversations/bob/read", "7", "Bearer tok"},
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("requests %+v, want %+v", got, want)
	}
}

// A read mark is a logged event of its own: every stream of the user gets
// it, the stream of the client that marked included, with an id after
// the message it marks.
func TestReadEventOnEveryStream(t *testing.T) {
	srv := chattest.Start(t)
	alice, bob := lobby(t, srv.URL)
	other := client.New(srv.URL, client.WithToken(alice.Token()))
	t.Cleanup(other.CloseIdleConnections)
	mine, theirs := subscribe(t, alice), subscribe(t, other)
	live(mine, "alice")
	live(theirs, "alice")
	m := say(t, bob, "hello", 1)[0]
	if _, err := alice.MarkRead(testCtx(t), "lobby", m.ID); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*sub{"the marking client's stream": mine, "another stream": theirs} {
		e := s.expect(client.KindRead, nil)
		markID, err1 := strconv.ParseInt(e.ID, 10, 64)
		msgID, err2 := strconv.ParseInt(m.ID, 10, 64)
		if e.Room != "lobby" || e.Read != m.ID || err1 != nil || err2 != nil || markID <= msgID {
			t.Errorf("%s: read %+v, want lobby read up to %s with an id after it", name, e, m.ID)
		}
	}
}
