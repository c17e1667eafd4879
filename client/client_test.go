package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/ssechat/ssechat/client"
	"github.com/ssechat/ssechat/internal/chattest"
)

// login returns a client of base logged in as name (registering it) with
// the password chattest uses, so chattest's clients can be the same user.
func login(t testing.TB, base, name string) *client.Client {
	t.Helper()
	c := client.New(base)
	t.Cleanup(c.CloseIdleConnections)
	if _, err := c.Login(testCtx(t), name, "pw-"+name); err != nil {
		t.Fatalf("login %s: %v", name, err)
	}
	return c
}

// testCtx is a context that ends with the test, or after chattest.Timeout.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), chattest.Timeout)
	t.Cleanup(cancel)
	return ctx
}

// sub is a running Subscribe whose events the test reads.
type sub struct {
	t      testing.TB
	events chan client.Event
	cancel context.CancelFunc
	done   chan struct{}
	err    error // Subscribe's result, once done is closed
}

// subscribe runs c.Subscribe until the test ends (or sub.stop).
func subscribe(t testing.TB, c *client.Client, opts ...client.SubscribeOption) *sub {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &sub{t: t, events: make(chan client.Event, 10000), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.err = c.Subscribe(ctx, func(e client.Event) error {
			s.events <- e
			return nil
		}, opts...)
	}()
	t.Cleanup(func() { s.stop() })
	return s
}

// stop cancels the subscription and returns what Subscribe returned.
func (s *sub) stop() error {
	s.cancel()
	select {
	case <-s.done:
	case <-time.After(chattest.Timeout):
		s.t.Errorf("Subscribe still running %v after cancel", chattest.Timeout)
	}
	return s.err
}

// next returns the next event, failing the test if none comes in time or
// Subscribe returned.
func (s *sub) next() client.Event {
	s.t.Helper()
	select {
	case e := <-s.events:
		return e
	case <-s.done:
		select {
		case e := <-s.events:
			return e
		default:
		}
		s.t.Fatalf("Subscribe returned: %v", s.err)
	case <-time.After(chattest.Timeout):
		s.t.Fatalf("no event within %v", chattest.Timeout)
	}
	return client.Event{}
}

// until collects events up to and including the first for which stop
// holds.
func (s *sub) until(stop func(client.Event) bool) []client.Event {
	s.t.Helper()
	var out []client.Event
	for {
		e := s.next()
		out = append(out, e)
		if stop(e) {
			return out
		}
	}
}

// expect skips events until one of kind for which match (may be nil)
// holds.
func (s *sub) expect(kind client.Kind, match func(client.Event) bool) client.Event {
	s.t.Helper()
	events := s.until(func(e client.Event) bool { return e.Kind == kind && (match == nil || match(e)) })
	return events[len(events)-1]
}

// kinds lists events for failure messages.
func kinds(events []client.Event) string {
	out := ""
	for _, e := range events {
		out += fmt.Sprintf("%s#%s ", e.Kind, e.ID)
	}
	return out
}

// The REST calls do what they say, as the user the client logged in as,
// and the stream brings what another user posts, typed.
func TestChat(t *testing.T) {
	srv := chattest.Start(t)
	ctx := testCtx(t)
	alice, bob := login(t, srv.URL, "alice"), login(t, srv.URL, "bob")
	if alice.Token() == "" || alice.Token() == bob.Token() {
		t.Fatalf("tokens %q and %q", alice.Token(), bob.Token())
	}
	if _, err := alice.Join(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	joined, err := bob.Join(ctx, "lobby")
	if err != nil {
		t.Fatal(err)
	}
	if joined.Room != "lobby" || joined.Count != 2 || len(joined.Members) != 2 {
		t.Fatalf("join: %+v", joined)
	}

	s := subscribe(t, alice)
	ready := s.expect(client.KindReady, nil)
	if ready.User != "alice" || ready.ID == "" {
		t.Fatalf("ready %+v", ready)
	}
	s.expect(client.KindPresence, func(e client.Event) bool { return e.User == "alice" && e.Status == "online" })

	posted, err := bob.Post(ctx, "lobby", "hello lobby")
	if err != nil {
		t.Fatal(err)
	}
	if posted.Kind != client.KindMessage || posted.Room != "lobby" || posted.From != "bob" || posted.TS.IsZero() {
		t.Fatalf("post answered %+v", posted)
	}
	got := s.expect(client.KindMessage, nil)
	got.Data = ""
	if got != posted {
		t.Fatalf("stream got\n%+v\nwant the post's answer\n%+v", got, posted)
	}

	mention, err := bob.Post(ctx, "lobby", "@alice just you")
	if err != nil {
		t.Fatal(err)
	}
	sent, err := bob.Send(ctx, "alice", "also private")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []client.Event{mention, sent} {
		if want.Kind != client.KindPrivate || want.To != "alice" {
			t.Fatalf("private answer %+v", want)
		}
		got := s.next()
		got.Data = ""
		if got != want {
			t.Fatalf("stream got %+v, want %+v", got, want)
		}
	}

	history, err := alice.History(ctx, "lobby", client.Limit(10))
	if err != nil {
		t.Fatal(err)
	}
	if len(history) != 1 || history[0] != posted {
		t.Fatalf("history %+v, want %+v", history, posted)
	}
	if older, err := alice.History(ctx, "lobby", client.Before(posted.ID)); err != nil || len(older) != 0 {
		t.Fatalf("history before %s: %v %+v", posted.ID, err, older)
	}
	private, err := alice.PrivateHistory(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(private, []client.Event{mention, sent}) {
		t.Fatalf("private history %+v", private)
	}
	convs, err := alice.Conversations(ctx)
	if err != nil || len(convs) != 1 || convs[0].User != "bob" || convs[0].LastID != sent.ID {
		t.Fatalf("conversations %+v, %v", convs, err)
	}

	if _, err := alice.Join(ctx, "den"); err != nil {
		t.Fatal(err)
	}
	page, err := alice.Rooms(ctx, client.Limit(1))
	if err != nil || len(page.Rooms) != 1 || page.Rooms[0].Room != "den" || page.Next != "den" {
		t.Fatalf("rooms page 1: %+v, %v", page, err)
	}
	// Read markers: alice has read nothing of the lobby since her join,
	// bob's one message is unread, until she marks it (the mention and the
	// private message went to the conversation, not the room).
	page, err = alice.Rooms(ctx, client.Limit(1), client.After(page.Next))
	if err != nil || len(page.Rooms) != 1 || page.Rooms[0].Room != "lobby" || page.Rooms[0].Members != 2 || page.Rooms[0].Unread != 1 {
		t.Fatalf("rooms page 2: %+v, %v (one unread)", page, err)
	}
	marked, err := alice.MarkRead(ctx, "lobby", posted.ID)
	if err != nil || marked != (client.ReadState{Room: "lobby", Read: posted.ID, Unread: 0}) {
		t.Fatalf("mark read: %+v, %v", marked, err)
	}
	readEvent := s.expect(client.KindRead, nil)
	if readEvent.Room != "lobby" || readEvent.Read != posted.ID {
		t.Fatalf("read event %+v", readEvent)
	}
	page, err = alice.Rooms(ctx, client.Limit(1), client.After("den"))
	if err != nil || len(page.Rooms) != 1 || page.Rooms[0] != (client.RoomInfo{Room: "lobby", Members: 2, Read: posted.ID}) {
		t.Fatalf("rooms page 2 after the mark: %+v, %v", page, err)
	}
	convRead, err := alice.MarkConversationRead(ctx, "bob", sent.ID)
	if err != nil || convRead != (client.ReadState{With: "bob", Read: sent.ID}) {
		t.Fatalf("mark conversation read: %+v, %v", convRead, err)
	}
	members, err := alice.Members(ctx, "lobby")
	if err != nil || len(members.Members) != 2 || !members.Members[0].Online || members.Members[1].Online {
		t.Fatalf("members %+v, %v (alice online, bob not)", members, err)
	}
	me, err := alice.Me(ctx)
	if err != nil || me.Username != "alice" || !slices.Equal(me.Rooms, []string{"den", "lobby"}) {
		t.Fatalf("me %+v, %v", me, err)
	}

	if err := alice.Leave(ctx, "den"); err != nil {
		t.Fatal(err)
	}
	s.expect(client.KindLeave, func(e client.Event) bool { return e.Room == "den" && e.User == "alice" })

	if err := s.stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe after cancel: %v, want context.Canceled", err)
	}
}

// A client made with a token it kept is the same session.
func TestWithToken(t *testing.T) {
	srv := chattest.Start(t)
	alice := login(t, srv.URL, "alice")
	again := client.New(srv.URL+"/", client.WithToken(alice.Token()), client.WithHTTPClient(&http.Client{Timeout: time.Minute}))
	me, err := again.Me(testCtx(t))
	if err != nil || me.Username != "alice" {
		t.Fatalf("me %+v, %v", me, err)
	}
}
