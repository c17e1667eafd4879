package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ssechat/ssechat/client"
)

func (a *cli) say(ctx context.Context, env *environment, args []string) error {
	return a.post(ctx, env, args, false)
}

func (a *cli) dm(ctx context.Context, env *environment, args []string) error {
	return a.post(ctx, env, args, true)
}

// maxLine is the longest line of stdin say takes (the server takes texts of
// up to 4,000 characters; a longer line is refused by it, this one is not
// even read).
const maxLine = 1 << 20

// post is say (to a room) and dm (to a user): the text of the arguments,
// or each line of stdin, posted in order, each exactly once.
func (a *cli) post(ctx context.Context, env *environment, args []string, private bool) error {
	name, synopsis := "say", "chat say ROOM [TEXT...]"
	if private {
		name, synopsis = "dm", "chat dm USER [TEXT...]"
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// Flags only before the target: the words after it are the text, as
	// they are, dashes and all.
	fs.SetOutput(a.stdout)
	fs.Usage = func() { fmt.Fprintf(a.stdout, "usage: %s\n", synopsis) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return usageErrorf("%v; usage: %s", err, synopsis)
	}
	if fs.NArg() == 0 {
		return usageErrorf("usage: %s", synopsis)
	}
	target, words := fs.Arg(0), fs.Args()[1:]
	c, err := env.loggedIn()
	if err != nil {
		return err
	}
	defer c.CloseIdleConnections()

	hint := ""
	send := func(ctx context.Context, text string) error {
		_, err := c.Send(ctx, userName(target), text)
		return err
	}
	if !private {
		room := roomName(target)
		hint = joinHint(room)
		send = func(ctx context.Context, text string) error {
			_, err := c.Post(ctx, room, text)
			return err
		}
	}
	if len(words) > 0 {
		return env.explain(patiently(ctx, ctx, send, strings.Join(words, " ")), hint)
	}

	// Each line of stdin. A session that ended, or a room one is not in,
	// is said at once, not when the first line comes (which, from tail
	// -f, may be in an hour).
	me, err := c.Me(ctx)
	if err != nil {
		return env.explain(err, "")
	}
	if !private && !containsFold(me.Rooms, roomName(target)) {
		return failf(exitFailed, "you are not a member of #%s: %s", roomName(target), hint)
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lines := readLines(rctx, a.stdin)
	failed := 0
	for {
		var l line
		select {
		case <-ctx.Done():
			// Interrupted while waiting for input: every line read
			// was posted.
			return nil
		case l = <-lines:
		}
		if l.err != nil {
			return failf(exitFailed, "reading stdin: %v", l.err)
		}
		if l.eof {
			break
		}
		text := strings.TrimSuffix(l.text, "\r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		// A line being posted is finished even if a signal comes (its
		// retries are bounded by CHAT_RETRY_TIMEOUT): it is either
		// posted or said not to be.
		err := patiently(context.WithoutCancel(ctx), ctx, send, text)
		if err == nil {
			continue
		}
		var apiErr *client.APIError
		switch {
		case errors.Is(err, context.Canceled):
			return failf(exitFailed, "interrupted: line %d was not posted", l.n)
		case errors.As(err, &apiErr) && lineRefused(apiErr.Status):
			// This line only (too long, say): the next may do.
			fmt.Fprintf(a.stderr, "chat: line %d not posted: %s (%d)\n", l.n, apiErr.Message, apiErr.Status)
			failed++
			continue
		}
		var e *exitError
		errors.As(env.explain(err, hint), &e)
		outcome := "was not posted"
		if e.code == exitUnavailable && !errors.As(err, &apiErr) {
			// No answer: the server may have stored it. (A server
			// that keeps Idempotency-Keys took the retries as one.)
			outcome = "may not have been posted"
		}
		return failf(e.code, "line %d %s, nor any after it: %s", l.n, outcome, e.msg)
	}
	if failed > 0 {
		return failf(exitFailed, "%d of the lines were not posted", failed)
	}
	return nil
}

// lineRefused tells whether the server refused a text for what it is
// (400 bad text, 404 an @name not in the room, 413 too large), so that the
// lines after it may still be posted.
func lineRefused(status int) bool {
	return status == http.StatusBadRequest || status == http.StatusNotFound || status == http.StatusRequestEntityTooLarge
}

// patiently sends text with send(ctx), waiting as long as the server asks
// when it answers 429 (a burst of lines beyond the message rate) and
// trying again: a 429 stored nothing. The client retries network errors
// itself, with one Idempotency-Key. interrupt ends a wait.
func patiently(ctx, interrupt context.Context, send func(context.Context, string) error, text string) error {
	for {
		err := send(ctx, text)
		var apiErr *client.APIError
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusTooManyRequests {
			return err
		}
		wait := max(apiErr.RetryAfter, 100*time.Millisecond)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-interrupt.Done():
			t.Stop()
			return interrupt.Err()
		}
	}
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

// line is a line of stdin: its number and text, or the end, or an error.
type line struct {
	n    int
	text string
	eof  bool
	err  error
}

// readLines reads r line by line on a goroutine of its own, so that the
// caller can stop waiting for a line when a signal comes. The goroutine
// ends at the end of r or of ctx.
func readLines(ctx context.Context, r io.Reader) <-chan line {
	out := make(chan line)
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 0, 64<<10), maxLine)
		n := 0
		send := func(l line) bool {
			select {
			case out <- l:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for sc.Scan() {
			n++
			if !send(line{n: n, text: sc.Text()}) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			if errors.Is(err, bufio.ErrTooLong) {
				err = fmt.Errorf("line %d is longer than %d bytes", n+1, maxLine)
			}
			send(line{err: err})
			return
		}
		send(line{eof: true})
	}()
	return out
}
