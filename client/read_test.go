package client_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ssechat/ssechat/client"
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
