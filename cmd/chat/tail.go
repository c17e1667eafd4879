package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ssechat/ssechat/client"
)

const tailSynopsis = "chat tail [--json] [--presence] [--state FILE] [ROOM|@USER|@]..."

// tail prints the user's stream, filtered, one line per event, flushed at
// once. It keeps the id of the last event it handled in a position file
// and starts the next run after it, so that across its restarts (and the
// server's) every event is printed exactly once, in order: the client
// package resumes within a run, the position file across runs.
func (a *cli) tail(ctx context.Context, env *environment, args []string) error {
	fset := flag.NewFlagSet("tail", flag.ContinueOnError)
	asJSON := fset.Bool("json", false, `one JSON object per line: the event as the stream carries it, plus "event", its kind`)
	presence := fset.Bool("presence", false, "also who comes online and goes offline, and big rooms' counts")
	statePath := fset.String("state", "", "keep the position in FILE, making its directory if needed (default: one per server, user and filter under $XDG_STATE_HOME/ssechat/tail/)")
	rest, err := a.flags(fset, tailSynopsis, args, func(int) bool { return true })
	if err != nil {
		return err
	}
	filter, err := parseFilter(rest)
	if err != nil {
		return err
	}
	if *statePath != "" {
		// Now, not at the first event, once connected.
		if err := os.MkdirAll(filepath.Dir(*statePath), 0o700); err != nil {
			return failf(exitUsage, "--state %s: cannot make its directory: %v", *statePath, err)
		}
	}
	c, err := env.loggedIn()
	if err != nil {
		return err
	}
	defer c.CloseIdleConnections()
	me, err := c.Me(ctx)
	if err != nil {
		return env.explain(err, "")
	}
	for _, r := range filter.rooms {
		if !containsFold(me.Rooms, r) {
			return failf(exitFailed, "you are not a member of #%s: %s", r, joinHint(r))
		}
	}

	pos := position{path: *statePath}
	if pos.path == "" {
		pos.root = env.stateDir
		pos.path = filepath.Join(env.stateDir, "tail", url.QueryEscape(env.url),
			url.QueryEscape(strings.ToLower(me.Username)), url.QueryEscape(filter.key()))
	}
	if err := pos.load(); err != nil {
		return err
	}

	out := bufio.NewWriter(a.stdout)
	f := formatter{me: me.Username, json: *asJSON, now: time.Now}
	// Presence is live state that each (re)connection lists again after
	// ready, and a notice may cross the list: a line only when a status
	// changes. Who was online and is not in the new list went offline
	// while the stream was down: said once the list is over, at the next
	// event that is not a presence (or the next ready).
	status := map[string]string{} // by lower-case name
	names := map[string]string{}  // lower-case name: as the server spells it
	var listed map[string]bool    // who the list under way named; nil: none under way
	var listedAt string           // the id of the ready the list follows
	show := func(e client.Event) error {
		if !filter.match(e, me.Username, *presence) {
			return nil
		}
		if line, ok := f.line(e); ok {
			out.WriteString(line)
			out.WriteByte('\n')
			if err := out.Flush(); err != nil {
				return failf(exitFailed, "writing the output: %v", err)
			}
		}
		return nil
	}
	endList := func() error {
		var gone []string
		for user, st := range status {
			// The tail's own user is online: this stream is open.
			if st == "online" && !listed[user] && !strings.EqualFold(user, me.Username) {
				gone = append(gone, user)
			}
		}
		listed = nil
		slices.Sort(gone)
		for _, user := range gone {
			status[user] = "offline"
			if err := show(offline(names[user], listedAt, time.Now())); err != nil {
				return err
			}
		}
		return nil
	}
	handle := func(e client.Event) error {
		if listed != nil && e.Kind != client.KindPresence {
			if err := endList(); err != nil {
				return err
			}
		}
		switch e.Kind {
		case client.KindReady:
			listed, listedAt = map[string]bool{}, e.ID
		case client.KindShutdown:
			fmt.Fprintf(a.stderr, "chat: the server is going away (%s); resuming when it is back\n", clean(e.Reason))
		case client.KindPresence:
			user := strings.ToLower(e.User)
			if listed != nil {
				listed[user] = true
			}
			names[user] = e.User
			if status[user] == e.Status {
				return pos.save(e.ID)
			}
			status[user] = e.Status
		}
		if err := show(e); err != nil {
			return err
		}
		// Only once it is printed: a tail killed in between prints it
		// again rather than never.
		return pos.save(e.ID)
	}
	opts := []client.SubscribeOption{client.OnReconnect(func(err error, delay time.Duration) {
		fmt.Fprintf(a.stderr, "chat: the stream was interrupted (%v); reconnecting in %v\n", err, delay.Round(time.Millisecond))
	})}
	if pos.last != "" {
		opts = append(opts, client.ResumeFrom(pos.last))
	}
	err = c.Subscribe(ctx, handle, opts...)
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return nil // a signal: the position is saved up to the last line
	}
	return env.explain(err, "")
}

// offline is the presence event of user gone offline, at the stream's
// position id, as the stream would carry it.
func offline(user, id string, now time.Time) client.Event {
	data, _ := json.Marshal(struct {
		ID     string `json:"id"`
		User   string `json:"user"`
		Status string `json:"status"`
		TS     string `json:"ts"`
	}{id, user, "offline", now.UTC().Format("2006-01-02T15:04:05.000Z07:00")})
	return client.Event{Kind: client.KindPresence, ID: id, User: user, Status: "offline",
		TS: now, Data: string(data)}
}

// position is where a tail stopped: the id of the last event handled.
type position struct {
	root string // chat's state directory when path is below it, else ""
	path string
	last string // as loaded, then as saved
}

func (p *position) load() error {
	data, err := os.ReadFile(p.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // the first run: from the present on
	}
	if err != nil {
		return fmt.Errorf("reading the position: %w", err)
	}
	id := strings.TrimSpace(string(data))
	if _, err := strconv.ParseUint(id, 10, 64); err != nil {
		return fmt.Errorf("%s holds no event id (%q): remove it to start from the present", p.path, id)
	}
	p.last = id
	return nil
}

// save records id, if it moves the position: live notices repeat the
// id before them.
func (p *position) save(id string) error {
	if id == "" || id == p.last {
		return nil
	}
	// Not synced: a rename outlives the process being killed, and a
	// machine that crashes loses at most the last positions, which then
	// print again.
	if err := writeFileAtomic(p.root, p.path, []byte(id+"\n"), false); err != nil {
		return failf(exitFailed, "saving the position: %v", err)
	}
	p.last = id
	return nil
}

// filter is what tail prints: the rooms named, the private conversations
// with the users named, all private messages (@), or with none of these
// everything.
type filter struct {
	rooms, users []string
	allPrivate   bool
}

func parseFilter(args []string) (filter, error) {
	var f filter
	for _, arg := range args {
		switch {
		case arg == "@":
			f.allPrivate = true
		case strings.HasPrefix(arg, "@"):
			f.users = append(f.users, userName(arg))
		case roomName(arg) != "":
			f.rooms = append(f.rooms, roomName(arg))
		default:
			return filter{}, usageErrorf("%q names no room; usage: %s", arg, tailSynopsis)
		}
	}
	return f, nil
}

func (f filter) everything() bool {
	return len(f.rooms) == 0 && len(f.users) == 0 && !f.allPrivate
}

// key names the filter in the position file's name: the same filter
// however it is written, a position of its own for each filter.
func (f filter) key() string {
	if f.everything() {
		return "all"
	}
	var parts []string
	for _, r := range f.rooms {
		parts = append(parts, "#"+strings.ToLower(r))
	}
	for _, u := range f.users {
		parts = append(parts, "@"+strings.ToLower(u))
	}
	if f.allPrivate {
		parts = append(parts, "@")
	}
	slices.Sort(parts)
	return strings.Join(slices.Compact(parts), ",")
}

// match tells whether tail prints e. Presence and member counts are
// printed with --presence only: they are live state, not conversation.
func (f filter) match(e client.Event, me string, presence bool) bool {
	switch e.Kind {
	case client.KindMessage, client.KindJoin, client.KindLeave:
		return f.everything() || containsFold(f.rooms, e.Room)
	case client.KindMembers:
		return presence && (f.everything() || containsFold(f.rooms, e.Room))
	case client.KindPrivate:
		other := e.From
		if strings.EqualFold(e.From, me) {
			other = e.To
		}
		return f.everything() || f.allPrivate || containsFold(f.users, other)
	case client.KindPresence:
		return presence
	case client.KindReset:
		return true
	}
	return false
}
