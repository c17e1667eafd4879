package client

import (
	"context"
	"net/url"
	"strconv"

	"github.com/google/uuid"
)

// Login logs user in with password, registering the name if it is free,
// and makes the client use the session's token from then on. It returns
// the token, which a program may keep and pass to WithToken later. It is
// never retried: a retry of a login whose answer was lost would leave the
// first session live on the server, with a token nobody holds.
func (c *Client) Login(ctx context.Context, user, password string) (string, error) {
	var out struct {
		Token    string `json:"token"`
		Username string `json:"username"`
	}
	err := c.do(ctx, call{method: "POST", path: "/api/login",
		body: map[string]string{"username": user, "password": password}, out: &out, once: true})
	if err != nil {
		return "", err
	}
	c.token.Store(&out.Token)
	return out.Token, nil
}

// Logout ends the client's session (with all, every session of the user)
// and the streams it opened. It is never retried: a retry of a logout that
// took effect would be answered 401.
func (c *Client) Logout(ctx context.Context, all bool) error {
	q := url.Values{}
	if all {
		q.Set("all", "1")
	}
	return c.do(ctx, call{method: "POST", path: "/api/logout", query: q, once: true})
}

// Profile is who the session belongs to.
type Profile struct {
	Username string   `json:"username"`
	Rooms    []string `json:"rooms"` // the rooms the user is a member of, sorted
}

// Me returns the session's user and their rooms.
func (c *Client) Me(ctx context.Context) (Profile, error) {
	var p Profile
	err := c.do(ctx, call{method: "GET", path: "/api/me", out: &p})
	return p, err
}

// Member is a member of a room.
type Member struct {
	Username string `json:"username"`
	Online   bool   `json:"online"` // an open stream anywhere
}

// JoinedRoom is a room as a join leaves it.
type JoinedRoom struct {
	Room  string `json:"room"`
	Count int    `json:"count"` // members, the caller included
	// Members is empty for a large room: use Client.Members.
	Members []Member `json:"members"`
}

// Join makes the user a member of room, creating it if needed. Joining a
// room one is in already changes nothing.
func (c *Client) Join(ctx context.Context, room string) (JoinedRoom, error) {
	var out JoinedRoom
	err := c.do(ctx, call{method: "POST", path: "/api/rooms/" + url.PathEscape(room) + "/join", out: &out})
	return out, err
}

// Leave ends the user's membership of room; leaving a room one is not in
// is not an error.
func (c *Client) Leave(ctx context.Context, room string) error {
	return c.do(ctx, call{method: "POST", path: "/api/rooms/" + url.PathEscape(room) + "/leave"})
}

// Post posts text to room and returns the event once the server has stored
// it. A text of the form "@name rest" is a private message to name (who
// must be in the room), and the event is then of KindPrivate.
//
// Network errors and 502/503/504 answers are retried (see
// WithRetryTimeout) with one Idempotency-Key, so that a server that
// stored the first try answers the retry with the same event instead of
// storing it twice. A 429 is returned at once, as an *APIError whose
// RetryAfter says when the server will take more: whether to wait is the
// program's choice.
func (c *Client) Post(ctx context.Context, room, text string) (Event, error) {
	return c.postText(ctx, "/api/rooms/"+url.PathEscape(room)+"/messages", text)
}

// Send sends text privately to user and returns the event once the server
// has stored it. Retries are as for Post.
func (c *Client) Send(ctx context.Context, user, text string) (Event, error) {
	return c.postText(ctx, "/api/users/"+url.PathEscape(user)+"/messages", text)
}

func (c *Client) postText(ctx context.Context, path, text string) (Event, error) {
	var e Event
	err := c.do(ctx, call{method: "POST", path: path, body: map[string]string{"text": text},
		out: &e, key: uuid.NewString()})
	if err != nil {
		return Event{}, err
	}
	e.Kind = KindMessage
	if e.To != "" {
		e.Kind = KindPrivate
	}
	return e, nil
}

// PageOption chooses a page of a list: Limit, Before, After.
type PageOption func(url.Values)

// Limit asks for at most n items (the server takes 1 to 500).
func Limit(n int) PageOption {
	return func(q url.Values) { q.Set("limit", strconv.Itoa(n)) }
}

// Before asks for history older than the event id (pass the oldest id you
// hold to page backwards).
func Before(id string) PageOption {
	return func(q url.Values) { q.Set("before", id) }
}

// After asks for the list page after a cursor: the Next of the page
// before.
func After(cursor string) PageOption {
	return func(q url.Values) { q.Set("after", cursor) }
}

func pageQuery(opts []PageOption) url.Values {
	q := url.Values{}
	for _, o := range opts {
		o(q)
	}
	return q
}

// History returns a page of room's messages, oldest first: the newest page
// unless Before says otherwise (default 50; see Limit). Members only.
func (c *Client) History(ctx context.Context, room string, opts ...PageOption) ([]Event, error) {
	return c.history(ctx, "/api/rooms/"+url.PathEscape(room)+"/messages", KindMessage, opts)
}

// PrivateHistory returns a page of the private messages between the user
// and user, both ways, oldest first; paging as for History.
func (c *Client) PrivateHistory(ctx context.Context, user string, opts ...PageOption) ([]Event, error) {
	return c.history(ctx, "/api/users/"+url.PathEscape(user)+"/messages", KindPrivate, opts)
}

func (c *Client) history(ctx context.Context, path string, kind Kind, opts []PageOption) ([]Event, error) {
	var out struct {
		Messages []Event `json:"messages"`
	}
	if err := c.do(ctx, call{method: "GET", path: path, query: pageQuery(opts), out: &out}); err != nil {
		return nil, err
	}
	for i := range out.Messages {
		out.Messages[i].Kind = kind
	}
	return out.Messages, nil
}

// RoomInfo is a room in the list of rooms.
type RoomInfo struct {
	Room    string `json:"room"`
	Members int    `json:"members"`
	// Read and Unread are set for the rooms the caller is in by servers
	// that track reading (see MarkRead): the id of the last message the
	// user read, and how many came after it.
	Read   string `json:"read,omitempty"`
	Unread int    `json:"unread,omitempty"`
}

// RoomPage is a page of the list of rooms.
type RoomPage struct {
	Rooms []RoomInfo `json:"rooms"` // sorted by name
	Next  string     `json:"next"`  // pass to After for the next page; "" on the last
}

// Rooms returns a page of every room, sorted by name (see Limit, After).
func (c *Client) Rooms(ctx context.Context, opts ...PageOption) (RoomPage, error) {
	var p RoomPage
	err := c.do(ctx, call{method: "GET", path: "/api/rooms", query: pageQuery(opts), out: &p})
	return p, err
}

// MemberPage is a page of a room's members.
type MemberPage struct {
	Room    string   `json:"room"`
	Members []Member `json:"members"` // sorted by username
	Next    string   `json:"next"`    // pass to After for the next page; "" on the last
}

// Members returns a page of room's members with their online flag (see
// Limit, After).
func (c *Client) Members(ctx context.Context, room string, opts ...PageOption) (MemberPage, error) {
	var p MemberPage
	err := c.do(ctx, call{method: "GET", path: "/api/rooms/" + url.PathEscape(room) + "/members",
		query: pageQuery(opts), out: &p})
	return p, err
}

// Conversation is a private conversation.
type Conversation struct {
	User   string `json:"user"`    // the other participant
	LastID string `json:"last_id"` // the newest private message between the two
	// Read and Unread: as in RoomInfo.
	Read   string `json:"read,omitempty"`
	Unread int    `json:"unread,omitempty"`
}

// Conversations lists the users the caller has private messages with.
func (c *Client) Conversations(ctx context.Context) ([]Conversation, error) {
	var out struct {
		Conversations []Conversation `json:"conversations"`
	}
	err := c.do(ctx, call{method: "GET", path: "/api/conversations", out: &out})
	return out.Conversations, err
}

// ReadState is where the user stands in a room or conversation.
type ReadState struct {
	Room   string `json:"room,omitempty"` // set for a room
	With   string `json:"with,omitempty"` // set for a conversation
	Read   string `json:"read"`           // the last message id read
	Unread int    `json:"unread"`         // messages after it
}

// MarkRead records that the user has read room up to the message id;
// every stream of the user, this client's included, gets a KindRead event.
func (c *Client) MarkRead(ctx context.Context, room, id string) (ReadState, error) {
	return c.markRead(ctx, "/api/rooms/"+url.PathEscape(room)+"/read", id)
}

// MarkConversationRead records that the user has read the private
// conversation with user up to the message id.
func (c *Client) MarkConversationRead(ctx context.Context, user, id string) (ReadState, error) {
	return c.markRead(ctx, "/api/conversations/"+url.PathEscape(user)+"/read", id)
}

func (c *Client) markRead(ctx context.Context, path, id string) (ReadState, error) {
	var s ReadState
	err := c.do(ctx, call{method: "POST", path: path, body: map[string]string{"id": id}, out: &s})
	return s, err
}
