// Command chat is a terminal client of an ssechat server, for people and
// scripts: log in, join, say, send private messages, read history and
// follow the stream, one readable line (or JSON object) per event. It is
// built on the Go client package, github.com/ssechat/ssechat/client.
//
// Run chat help for the commands, the environment and the exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit codes: a script can rely on them (chat help lists them).
const (
	exitOK = 0
	// exitFailed: the server refused (4xx: the message says why), a line
	// of say was not posted, or something failed here (a file).
	exitFailed = 1
	// exitUsage: bad arguments or settings.
	exitUsage = 2
	// exitAuth: wrong password, not logged in, or the session ended.
	exitAuth = 3
	// exitUnavailable: the server could not be reached or was unavailable
	// after retries, or asked to wait (429): trying again later may work.
	exitUnavailable = 4
)

const usage = `chat is a terminal client of an ssechat server, for people and scripts.

Usage:
  chat login USER              log in, or register USER if the name is free; the password
                               comes from CHAT_PASSWORD, else it is asked on the terminal
  chat logout [--all]          end this session (--all: every session of the user)
  chat whoami                  print the logged-in user's name
  chat join ROOM               join ROOM, creating it if needed
  chat leave ROOM              leave ROOM
  chat rooms [--json]          list the rooms: members, whether you are in, unread counts
  chat members [--json] ROOM   list ROOM's members, and who is online
  chat say ROOM [TEXT...]      post TEXT to ROOM; without TEXT, each line of stdin is a
                               message (empty lines skipped): tail -f app.log | chat say ops
  chat dm USER [TEXT...]       send TEXT privately to USER; without TEXT, as say
  chat history [-n N] [--json] ROOM|@USER
                               print the last N (default 50) messages of ROOM, or of the
                               private conversation with USER
  chat read ROOM|@USER [ID]    mark ROOM, or the conversation with USER, read up to ID
                               (default: its newest message), on every device
  chat tail [--json] [--presence] [--state FILE] [ROOM|@USER|@]...
                               print events as they happen, one line each, and on the
                               next run resume exactly where this one stopped
  chat help                    this text

tail prints the messages, joins and leaves of the rooms named, the private messages
with each @USER named, and all private messages for @; with no argument, everything.
--presence adds who comes online and goes offline (and big rooms' counts). --json prints
one JSON object per line: the event as the server's stream carries it, plus "event",
its kind. A "reset" line means the server could not replay what came while tail was
not running: read it with chat history. tail keeps its position per server, user and
filter in $XDG_STATE_HOME/ssechat/tail/ (or --state FILE); its first run starts at the
present. Once streaming, it reconnects by itself for as long as it runs, through
server restarts. SIGINT and SIGTERM end it with status 0.

Environment:
  CHAT_URL            the server (default http://localhost:8080)
  CHAT_TOKEN          a session token to use instead of the stored one
  CHAT_PASSWORD       the password for chat login
  CHAT_RETRY_TIMEOUT  how long a request is retried through network errors and
                      502/503/504 answers before chat gives up (default 30s); a
                      message keeps one Idempotency-Key across its retries
  XDG_CONFIG_HOME     sessions are kept in $XDG_CONFIG_HOME/ssechat/sessions/, one
                      file per server, mode 0600 (default ~/.config)
  XDG_STATE_HOME      tail positions (default ~/.local/state)

Exit status:
  0  done
  1  the server refused (the message says why), a line was not posted, or a local error
  2  usage: bad arguments or settings
  3  wrong password, not logged in, or the session ended: chat login USER
  4  the server could not be reached, was unavailable, or asked to wait: try again later
`

func main() {
	a := &cli{
		stdin:  os.Stdin,
		stdout: os.Stdout,
		stderr: os.Stderr,
		getenv: os.Getenv,
	}
	os.Exit(a.run(os.Args[1:]))
}

// cli is one run of chat: its environment and its files.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// command is a subcommand: it gets the arguments after its name.
type command func(a *cli, ctx context.Context, env *environment, args []string) error

// lookup returns the subcommand called name, nil if there is none.
func lookup(name string) command {
	switch name {
	case "login":
		return (*cli).login
	case "logout":
		return (*cli).logout
	case "whoami":
		return (*cli).whoami
	case "join":
		return (*cli).join
	case "leave":
		return (*cli).leave
	case "rooms":
		return (*cli).rooms
	case "members":
		return (*cli).members
	case "say":
		return (*cli).say
	case "dm":
		return (*cli).dm
	case "history":
		return (*cli).history
	case "tail":
		return (*cli).tail
	case "read":
		return (*cli).read
	}
	return nil
}

// run runs the command line and returns the exit status.
func (a *cli) run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(a.stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(a.stdout, usage)
		return exitOK
	}
	cmd := lookup(args[0])
	if cmd == nil {
		return a.report(usageErrorf("unknown command %q (chat help lists them)", args[0]))
	}
	env, err := loadEnvironment(a.getenv)
	if err != nil {
		return a.report(err)
	}
	// SIGINT and SIGTERM end a command's context; each command decides
	// what that means (tail saves its position and exits 0). A second
	// signal, once stop has run, kills as usual.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	return a.report(cmd(a, ctx, env, args[1:]))
}

// exitError is an error with its exit status and a message in plain words.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, msg: fmt.Sprintf(format, args...)}
}

func failf(code int, format string, args ...any) error {
	return &exitError{code: code, msg: fmt.Sprintf(format, args...)}
}

// errHelp is returned by a command's flag parsing for -h: its usage went
// to stdout, and the status is 0.
var errHelp = errors.New("help")

// report prints err on stderr, if any, and returns the exit status.
func (a *cli) report(err error) int {
	if err == nil || errors.Is(err, errHelp) {
		return exitOK
	}
	var ee *exitError
	if !errors.As(err, &ee) {
		ee = &exitError{code: exitFailed, msg: err.Error()}
	}
	msg := strings.TrimSuffix(ee.msg, "\n")
	fmt.Fprintf(a.stderr, "chat: %s\n", msg)
	if ee.code == exitUsage && !strings.Contains(msg, "chat help") {
		fmt.Fprintln(a.stderr, "Run chat help for usage.")
	}
	return ee.code
}
