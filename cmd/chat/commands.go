package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ssechat/ssechat/client"
)

// flags parses a command's flags wherever they stand among its arguments
// (chat tail ops --json), up to a "--", and returns the other arguments.
// want says how many of those the command takes: a usage error otherwise.
func (a *cli) flags(fs *flag.FlagSet, synopsis string, args []string, want func(n int) bool) ([]string, error) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var rest []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				fmt.Fprintf(a.stdout, "usage: %s\n", synopsis)
				fs.SetOutput(a.stdout)
				fs.PrintDefaults()
				return nil, errHelp
			}
			return nil, usageErrorf("%v; usage: %s", err, synopsis)
		}
		parsed := args[:len(args)-fs.NArg()]
		args = fs.Args()
		if len(parsed) > 0 && parsed[len(parsed)-1] == "--" {
			// Parse took the "--": everything after it is an argument.
			rest = append(rest, args...)
			break
		}
		if len(args) > 0 {
			rest = append(rest, args[0])
			args = args[1:]
		}
	}
	if !want(len(rest)) {
		return nil, usageErrorf("usage: %s", synopsis)
	}
	return rest, nil
}

func exactly(n int) func(int) bool { return func(got int) bool { return got == n } }

// roomName takes the room of an argument: "ops" or "#ops".
func roomName(arg string) string { return strings.TrimPrefix(arg, "#") }

// userName takes the user of an argument: "bob" or "@bob".
func userName(arg string) string { return strings.TrimPrefix(arg, "@") }

func (a *cli) login(ctx context.Context, env *environment, args []string) error {
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	rest, err := a.flags(fs, "chat login USER", args, exactly(1))
	if err != nil {
		return err
	}
	user := userName(rest[0])
	password := env.password
	if password == "" {
		if password, err = askPassword(fmt.Sprintf("Password for %s on %s: ", user, env.url)); err != nil {
			return err
		}
	}
	c := env.newClient("")
	defer c.CloseIdleConnections()
	token, err := c.Login(ctx, user, password)
	if err != nil {
		var apiErr *client.APIError
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized {
			return failf(exitAuth, "%s (401)", apiErr.Message)
		}
		return env.explain(err, "")
	}
	// The server's spelling of the name, for the session file.
	p, err := c.Me(ctx)
	if err != nil {
		return env.explain(err, "")
	}
	return env.saveSession(session{URL: env.url, User: p.Username, Token: token})
}

func (a *cli) logout(ctx context.Context, env *environment, args []string) error {
	fs := flag.NewFlagSet("logout", flag.ContinueOnError)
	all := fs.Bool("all", false, "end every session of the user, on every device")
	if _, err := a.flags(fs, "chat logout [--all]", args, exactly(0)); err != nil {
		return err
	}
	token, err := env.sessionToken()
	if err != nil {
		return err
	}
	c := env.newClient(token)
	defer c.CloseIdleConnections()
	err = c.Logout(ctx, *all)
	if err != nil && !isStatus(err, http.StatusUnauthorized) {
		// The session may still be valid: keep it, to log out again.
		return env.explain(err, "")
	}
	// Ended now or before (401): either way it is of no more use. A
	// CHAT_TOKEN that is not the stored session leaves the stored one be.
	if s, lerr := env.loadSession(); lerr == nil && s != nil && (s.Token == token || *all) {
		return env.removeSession()
	}
	return nil
}

func (a *cli) whoami(ctx context.Context, env *environment, args []string) error {
	fs := flag.NewFlagSet("whoami", flag.ContinueOnError)
	if _, err := a.flags(fs, "chat whoami", args, exactly(0)); err != nil {
		return err
	}
	c, err := env.loggedIn()
	if err != nil {
		return err
	}
	defer c.CloseIdleConnections()
	p, err := c.Me(ctx)
	if err != nil {
		return env.explain(err, "")
	}
	_, err = fmt.Fprintln(a.stdout, p.Username)
	return err
}

func (a *cli) join(ctx context.Context, env *environment, args []string) error {
	fs := flag.NewFlagSet("join", flag.ContinueOnError)
	rest, err := a.flags(fs, "chat join ROOM", args, exactly(1))
	if err != nil {
		return err
	}
	c, err := env.loggedIn()
	if err != nil {
		return err
	}
	defer c.CloseIdleConnections()
	_, err = c.Join(ctx, roomName(rest[0]))
	return env.explain(err, "")
}

func (a *cli) leave(ctx context.Context, env *environment, args []string) error {
	fs := flag.NewFlagSet("leave", flag.ContinueOnError)
	rest, err := a.flags(fs, "chat leave ROOM", args, exactly(1))
	if err != nil {
		return err
	}
	c, err := env.loggedIn()
	if err != nil {
		return err
	}
	defer c.CloseIdleConnections()
	return env.explain(c.Leave(ctx, roomName(rest[0])), "")
}

func (a *cli) rooms(ctx context.Context, env *environment, args []string) error {
	fs := flag.NewFlagSet("rooms", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "one JSON object per room")
	if _, err := a.flags(fs, "chat rooms [--json]", args, exactly(0)); err != nil {
		return err
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
	var all []client.RoomInfo
	for next := ""; ; {
		opts := []client.PageOption{client.Limit(500)}
		if next != "" {
			opts = append(opts, client.After(next))
		}
		page, err := c.Rooms(ctx, opts...)
		if err != nil {
			return env.explain(err, "")
		}
		all = append(all, page.Rooms...)
		if next = page.Next; next == "" {
			break
		}
	}
	return writeRooms(a.stdout, all, me.Rooms, *asJSON)
}

// writeRooms lists rooms, marking those joined, with their unread counts
// where the server tracks reading.
func writeRooms(w io.Writer, rooms []client.RoomInfo, joined []string, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, r := range rooms {
			v := struct {
				client.RoomInfo
				Joined bool `json:"joined"`
			}{r, slices.Contains(joined, r.Room)}
			if err := enc.Encode(v); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rooms {
		members := fmt.Sprintf("%d members", r.Members)
		if r.Members == 1 {
			members = "1 member"
		}
		line := "#" + r.Room + "\t" + members
		if slices.Contains(joined, r.Room) {
			line += "\tjoined"
			if r.Unread > 0 {
				line += fmt.Sprintf("\t%d unread", r.Unread)
			}
		}
		fmt.Fprintln(tw, strings.TrimRight(line, "\t"))
	}
	return tw.Flush()
}

func (a *cli) members(ctx context.Context, env *environment, args []string) error {
	fs := flag.NewFlagSet("members", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "one JSON object per member")
	rest, err := a.flags(fs, "chat members [--json] ROOM", args, exactly(1))
	if err != nil {
		return err
	}
	room := roomName(rest[0])
	c, err := env.loggedIn()
	if err != nil {
		return err
	}
	defer c.CloseIdleConnections()
	enc := json.NewEncoder(a.stdout)
	for next := ""; ; {
		opts := []client.PageOption{client.Limit(500)}
		if next != "" {
			opts = append(opts, client.After(next))
		}
		page, err := c.Members(ctx, room, opts...)
		if err != nil {
			return env.explain(err, joinHint(room))
		}
		for _, m := range page.Members {
			if *asJSON {
				err = enc.Encode(m)
			} else {
				status := "offline"
				if m.Online {
					status = "online"
				}
				_, err = fmt.Fprintf(a.stdout, "%s %s\n", m.Username, status)
			}
			if err != nil {
				return err
			}
		}
		if next = page.Next; next == "" {
			return nil
		}
	}
}

// joinHint is what to do about a 403 or 404 for room.
func joinHint(room string) string {
	return "join it first with: chat join " + room
}

func (a *cli) history(ctx context.Context, env *environment, args []string) error {
	fs := flag.NewFlagSet("history", flag.ContinueOnError)
	n := fs.Int("n", 50, "how many messages, the newest")
	asJSON := fs.Bool("json", false, "one JSON object per message, as tail --json prints them")
	rest, err := a.flags(fs, "chat history [-n N] [--json] ROOM|@USER", args, exactly(1))
	if err != nil {
		return err
	}
	if *n < 1 {
		return usageErrorf("-n must be 1 or more")
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
	target, private := rest[0], strings.HasPrefix(rest[0], "@")
	fetch := func(opts ...client.PageOption) ([]client.Event, error) {
		if private {
			return c.PrivateHistory(ctx, userName(target), opts...)
		}
		return c.History(ctx, roomName(target), opts...)
	}
	// Pages of up to 500, newest first, until n or the beginning.
	var events []client.Event
	for len(events) < *n {
		want := min(*n-len(events), 500)
		opts := []client.PageOption{client.Limit(want)}
		if len(events) > 0 {
			opts = append(opts, client.Before(events[0].ID))
		}
		page, err := fetch(opts...)
		if err != nil {
			hint := ""
			if !private {
				hint = joinHint(roomName(target))
			}
			return env.explain(err, hint)
		}
		events = append(page, events...)
		if len(page) < want {
			break
		}
	}
	f := formatter{me: me.Username, json: *asJSON, dates: true, now: time.Now}
	for _, e := range events {
		if line, ok := f.line(e); ok {
			if _, err := fmt.Fprintln(a.stdout, line); err != nil {
				return err
			}
		}
	}
	return nil
}

// read marks ROOM, or the conversation with @USER, read up to ID, or up to
// its newest message: unread counts drop on every device of the user.
func (a *cli) read(ctx context.Context, env *environment, args []string) error {
	fs := flag.NewFlagSet("read", flag.ContinueOnError)
	rest, err := a.flags(fs, "chat read ROOM|@USER [ID]", args, func(n int) bool { return n == 1 || n == 2 })
	if err != nil {
		return err
	}
	c, err := env.loggedIn()
	if err != nil {
		return err
	}
	defer c.CloseIdleConnections()
	target, private := rest[0], strings.HasPrefix(rest[0], "@")
	hint := ""
	if !private {
		hint = joinHint(roomName(target))
	}
	id := ""
	if len(rest) == 2 {
		id = rest[1]
	} else {
		var newest []client.Event
		if private {
			newest, err = c.PrivateHistory(ctx, userName(target), client.Limit(1))
		} else {
			newest, err = c.History(ctx, roomName(target), client.Limit(1))
		}
		if err != nil {
			return env.explain(err, hint)
		}
		if len(newest) == 0 {
			return nil // nothing to read
		}
		id = newest[0].ID
	}
	var state client.ReadState
	if private {
		state, err = c.MarkConversationRead(ctx, userName(target), id)
	} else {
		state, err = c.MarkRead(ctx, roomName(target), id)
	}
	if err != nil {
		return env.explain(err, hint)
	}
	_, err = fmt.Fprintf(a.stdout, "%s: read up to %s, %d unread\n", target, state.Read, state.Unread)
	return err
}
