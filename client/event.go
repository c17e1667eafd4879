package client

import "time"

// Kind is the kind of an event: the SSE "event:" line. A server newer than
// this package may send kinds it does not list; they reach the handler
// with their Kind and Data all the same.
type Kind string

// The kinds of event a stream carries.
const (
	// KindMessage is a room message: Room, From, Text.
	KindMessage Kind = "message"
	// KindPrivate is a private message: From, To, Text.
	KindPrivate Kind = "private"
	// KindJoin and KindLeave: User joined or left Room.
	KindJoin  Kind = "join"
	KindLeave Kind = "leave"
	// KindPresence: User's Status is "online" or "offline". Live state:
	// never replayed; after every KindReady the stream lists who is online
	// now, and anyone it does not list is offline.
	KindPresence Kind = "presence"
	// KindMembers: a large room's Members and Online counts (such rooms
	// send no join, leave or presence notices). Live state.
	KindMembers Kind = "members"
	// KindRead: the user read Room (or the conversation With) up to the
	// message Read. Every stream of the user gets it, the one of the
	// device that marked included; it is logged (an id of its own,
	// replayed on resume), so it keeps all the user's devices in step.
	KindRead Kind = "read"
	// KindReady: the stream has replayed what was missed and is live; its
	// User is the stream's owner.
	KindReady Kind = "ready"
	// KindReset: the events since the resume point could not be replayed
	// (Reason says why). Reload what the program shows over REST
	// (History); the stream goes on from the server's present.
	KindReset Kind = "reset"
	// KindShutdown: the server is going away (Reason). Subscribe
	// reconnects by itself and resumes where the stream stopped.
	KindShutdown Kind = "shutdown"
)

// Event is an event of the stream, or of history, or the answer to a post.
// Which fields are set depends on Kind (see the Kind constants).
type Event struct {
	Kind Kind `json:"kind,omitempty"`
	// ID is a decimal id from the server's one ordered log. Messages,
	// private messages, joins, leaves and reads have ids of their own,
	// increasing along a stream; the other kinds carry the stream's
	// position (the id before them, or the head of the log). Resume from
	// the ID of the last event handled: see ResumeFrom.
	ID      string    `json:"id"`
	Room    string    `json:"room,omitempty"`
	From    string    `json:"from,omitempty"`
	To      string    `json:"to,omitempty"`
	User    string    `json:"user,omitempty"`
	Text    string    `json:"text,omitempty"`
	Status  string    `json:"status,omitempty"`
	Members int       `json:"members,omitempty"`
	Online  int       `json:"online,omitempty"`
	With    string    `json:"with,omitempty"`
	Read    string    `json:"read,omitempty"`
	Reason  string    `json:"reason,omitempty"`
	TS      time.Time `json:"ts,omitzero"`
	// Data is the event's JSON as the stream carried it, with whatever
	// fields this package does not know; "" for events of REST answers.
	// (A string, not a json.RawMessage, so that events compare with ==.)
	Data string `json:"-"`
}

// logged reports whether events of kind have ids of their own, which only
// increase along a stream: those alone can be told apart by id.
func (k Kind) logged() bool {
	switch k {
	case KindMessage, KindPrivate, KindJoin, KindLeave, KindRead:
		return true
	}
	return false
}
