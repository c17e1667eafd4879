// Package chat holds the domain of ssechat: events, names and error codes.
// It imports nothing of ours, so every other package can share its types.
package chat

import (
	"encoding/json"
	"strconv"
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
)

// Presence statuses.
const (
	Online  = "online"
	Offline = "offline"
)

// Event is one entry of the ordered log. Which fields are set depends on Kind:
// message (Room, From, Text), private (From, To, Text), join and leave
// (Room, User), presence (User, Status), members (Room, Members, Online).
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
	if e.Kind == KindMembers {
		w.Members, w.Online = &e.Members, &e.Online
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
}

// Snapshot is the routing state the log implies at one position: every
// room ever created and the memberships open after the event Head.
type Snapshot struct {
	Head    int64
	Rooms   []string
	Members []Membership
}
