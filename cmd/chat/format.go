package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/ssechat/ssechat/client"
)

// formatter writes events as lines: readable text, or JSON.
type formatter struct {
	me   string // the user, who is "you" in private lines
	json bool
	// dates: text lines start with the date too when it is not today
	// (history); tail shows the time only.
	dates bool
	now   func() time.Time
}

// line returns the event as one line, without its newline, and false for
// an event of a kind that has no line (ready, shutdown, read and kinds
// this program does not know).
func (f formatter) line(e client.Event) (string, bool) {
	switch e.Kind {
	case client.KindMessage, client.KindPrivate, client.KindJoin, client.KindLeave,
		client.KindPresence, client.KindMembers, client.KindReset:
	default:
		return "", false
	}
	if f.json {
		return jsonLine(e), true
	}
	return f.stamp(e) + " " + f.text(e), true
}

// stamp is the event's time, local: the time of day, with the date before
// it if dates is set and the day is not today. Events without a time (a
// reset) get the present.
func (f formatter) stamp(e client.Event) string {
	now := f.now()
	t := e.TS
	if t.IsZero() {
		t = now
	}
	t = t.Local()
	if f.dates {
		if y, m, d := t.Date(); y != now.Local().Year() || m != now.Local().Month() || d != now.Local().Day() {
			return t.Format("2006-01-02 15:04:05")
		}
	}
	return t.Format("15:04:05")
}

// text is the readable part of an event's line.
func (f formatter) text(e client.Event) string {
	switch e.Kind {
	case client.KindMessage:
		return fmt.Sprintf("#%s %s: %s", e.Room, e.From, clean(e.Text))
	case client.KindPrivate:
		return fmt.Sprintf("@%s → %s: %s", f.you(e.From), f.you(e.To), clean(e.Text))
	case client.KindJoin:
		return fmt.Sprintf("#%s %s joined", e.Room, e.User)
	case client.KindLeave:
		return fmt.Sprintf("#%s %s left", e.Room, e.User)
	case client.KindPresence:
		return fmt.Sprintf("%s is %s", e.User, e.Status)
	case client.KindMembers:
		return fmt.Sprintf("#%s %d members, %d online", e.Room, e.Members, e.Online)
	case client.KindReset:
		reason := ""
		if e.Reason != "" {
			reason = " (" + clean(e.Reason) + ")"
		}
		return "reset: the server could not replay what came since the last run" + reason +
			"; see what was missed with: chat history ROOM"
	}
	return string(e.Kind)
}

// you names the user "you", anyone else by name.
func (f formatter) you(name string) string {
	if f.me != "" && strings.EqualFold(name, f.me) {
		return "you"
	}
	return name
}

// clean makes a text safe to print as part of one line on a terminal:
// line breaks and other control characters (an escape sequence could
// rewrite the screen, a bidi control reorder it) are shown escaped, as \n,
// \x1b or \u202e. --json gives the text exactly.
func clean(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case isControl(r):
			if r < 0x100 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isControl: C0 and C1 controls, DEL, the Unicode line and paragraph
// separators, which some terminals break lines at, and the bidirectional
// controls, which reorder what follows them ("abc\u202egnp.exe" would
// show as "abcexe.png").
func isControl(r rune) bool {
	return r < 0x20 || (r >= 0x7f && r < 0xa0) || r == '\u2028' || r == '\u2029' ||
		unicode.Is(unicode.Bidi_Control, r)
}

// jsonLine is the event as one JSON object: its data as the stream
// carried it, with "event", its kind, first (data that is not an object
// goes in "data", as a string if it is not JSON). Events of REST answers
// (history) carry no stream data and are encoded as the stream would
// carry them.
func jsonLine(e client.Event) string {
	data := strings.TrimSpace(e.Data)
	if data == "" {
		data = restJSON(e)
	}
	kind, _ := json.Marshal(string(e.Kind))
	if !json.Valid([]byte(data)) {
		// Not JSON at all: a string, so that the line still is.
		quoted, _ := json.Marshal(data)
		return fmt.Sprintf(`{"event":%s,"data":%s}`, kind, quoted)
	}
	rest := strings.TrimSpace(strings.TrimPrefix(data, "{"))
	if !strings.HasPrefix(data, "{") {
		// Not an object (a kind of the future, say): keep it whole.
		return fmt.Sprintf(`{"event":%s,"data":%s}`, kind, data)
	}
	if rest == "}" {
		return fmt.Sprintf(`{"event":%s}`, kind)
	}
	return fmt.Sprintf(`{"event":%s,%s`, kind, rest)
}

// restJSON encodes a message or private message of a REST answer as the
// stream has it: the same fields in the same order, the time in UTC with
// milliseconds.
func restJSON(e client.Event) string {
	v := struct {
		ID   string `json:"id"`
		Room string `json:"room,omitempty"`
		From string `json:"from,omitempty"`
		To   string `json:"to,omitempty"`
		Text string `json:"text"`
		TS   string `json:"ts,omitempty"`
	}{ID: e.ID, Room: e.Room, From: e.From, To: e.To, Text: e.Text}
	if !e.TS.IsZero() {
		v.TS = e.TS.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	}
	data, _ := json.Marshal(v)
	return string(data)
}
