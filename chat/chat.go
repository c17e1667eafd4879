// Package chat holds the domain of ssechat: events, names and error codes.
// It imports nothing of ours, so every other package can share its types.
package chat

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Kind names an event on the wire (the SSE `event:` line).
type Kind string

// The kinds of event that are written to the ordered log.
const (
	KindMessage  Kind = "message"
	KindPrivate  Kind = "private"
	KindJoin     Kind = "join"
	KindLeave    Kind = "leave"
	KindPresence Kind = "presence"
	// KindMembers replaces join, leave and presence notices in a room too
	// large for them: at most one per interval, with counts.
	KindMembers Kind = "members"
	// KindRead records that a user has read a room or a conversation up
	// to an id. It is logged, so that it resumes with Last-Event-ID and
	// reaches every instance like any other event, but only its user's
	// streams ever get it.
	KindRead Kind = "read"
)

// Presence statuses.
const (
	Online  = "online"
	Offline = "offline"
)

// Event is one entry of the ordered log. Which fields are set depends on Kind:
// message (Room, From, Text), private (From, To, Text), join and leave
// (Room, User), presence (User, Status), members (Room, Members, Online),
// read (User, the reader; Room, or To for the conversation with To; Read).
type Event struct {
	ID      int64
	Kind    Kind
	Room    string
	From    string
	To      string
	User    string
	Text    string
	Status  string
	Members int
	Online  int
	Read    int64 // a read event's marker: the id read up to
	TS      time.Time
}

// TimeFormat is RFC 3339 in UTC with milliseconds, as the contract fixes.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

type wireEvent struct {
	ID     string `json:"id"`
	Room   string `json:"room,omitempty"`
	From   string `json:"from,omitempty"`
	To     string `json:"to,omitempty"`
	User   string `json:"user,omitempty"`
	Text   string `json:"text,omitempty"`
	Status string `json:"status,omitempty"`
	// Pointers: zero is a count worth sending, but only members events
	// carry counts.
	Members *int   `json:"members,omitempty"`
	Online  *int   `json:"online,omitempty"`
	With    string `json:"with,omitempty"`
	Read    string `json:"read,omitempty"`
	TS      string `json:"ts"`
}

// MarshalJSON writes the event as the clients see it: the id as a decimal
// string (JavaScript numbers lose precision past 2^53) and only the fields
// its kind uses.
func (e Event) MarshalJSON() ([]byte, error) {
	w := wireEvent{
		ID:     FormatID(e.ID),
		Room:   e.Room,
		From:   e.From,
		To:     e.To,
		User:   e.User,
		Text:   e.Text,
		Status: e.Status,
		TS:     e.TS.UTC().Format(TimeFormat),
	}
	switch e.Kind {
	case KindMembers:
		w.Members, w.Online = &e.Members, &e.Online
	case KindRead:
		// Only the reader gets it: naming them again says nothing, and
		// "with" reads better than "to" for a conversation.
		w.User, w.To, w.With, w.Read = "", "", e.To, FormatID(e.Read)
	}
	return json.Marshal(w)
}

// FormatID renders an event id as it appears on the wire.
func FormatID(id int64) string { return strconv.FormatInt(id, 10) }

// Membership is one user's current membership of one room.
type Membership struct {
	User string
	Room string
}

// Conversation is a private conversation as its participant sees it.
type Conversation struct {
	User   string
	LastID int64
	ReadState
}

// ReadState is how far a user has read a room or a conversation, and how
// many messages others wrote after that: Unread never counts the user's
// own messages.
type ReadState struct {
	Read   int64
	Unread int
}

// MaxUnread is the most unread messages a store counts for one room or
// conversation: a listing's cost stays bounded for a member who never
// marks anything read (a bot in a busy room). MaxUnread means that many
// or more.
const MaxUnread = 1000

// ReadKey names one read marker: user's in Room, or, when Room is empty,
// user's in the conversation with With.
type ReadKey struct {
	User, Room, With string
}

// ReadScope names what a read marker covers: "room:NAME" for a room,
// "user:NAME" for the conversation with NAME. Neither kind of name can
// hold a colon, so the two never collide.
func ReadScope(room, with string) string {
	if room != "" {
		return "room:" + room
	}
	return "user:" + with
}

// StoredRoomRecipient is what both stores keep in an event's room and
// recipient columns. A read event keeps its scope (ReadScope) as its
// recipient and no room: as a room it would sit in the room's index among
// its messages, and every history page, resume and unread count of a room
// would walk its members' read events too, one per message each read.
func StoredRoomRecipient(e Event) (room, recipient string) {
	if e.Kind == KindRead {
		return "", ReadScope(e.Room, e.To)
	}
	return e.Room, e.To
}

// LoadRead undoes StoredRoomRecipient on an event read back from a store.
// A read event stored with its room as such reads as it was stored.
func LoadRead(e *Event) {
	if e.Kind != KindRead {
		return
	}
	if room, with, ok := ParseReadScope(e.To); ok {
		e.Room, e.To = room, with
	}
}

// ParseReadScope is ReadScope's inverse; ok is false for anything else.
func ParseReadScope(scope string) (room, with string, ok bool) {
	if r, found := strings.CutPrefix(scope, "room:"); found && r != "" {
		return r, "", true
	}
	if w, found := strings.CutPrefix(scope, "user:"); found && w != "" {
		return "", w, true
	}
	return "", "", false
}

// Snapshot is the routing state the log implies at one position: every
// room ever created and the memberships open after the event Head.
type Snapshot struct {
	Head    int64
	Rooms   []string
	Members []Membership
}
