// Command echobot is a chat bot built on github.com/ssechat/ssechat/client:
// in the rooms it is in, it answers "!ping" with "pong", and it echoes
// every private message back to its sender as "echo: text", mentions
// included (the server turns a room message "@echobot text" into a private
// message). It ignores texts that are echoes already, so that two bots
// never answer each other for ever.
//
//	CHAT_URL=http://localhost:8080 CHAT_USER=echobot CHAT_PASSWORD=secret echobot lobby den
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ssechat/ssechat/client"
)

// echoPrefix starts every echo; a text that starts with it gets none.
const echoPrefix = "echo: "

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(ctx, log, os.Args[1:]); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("echobot stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, rooms []string) error {
	base, user, password := os.Getenv("CHAT_URL"), os.Getenv("CHAT_USER"), os.Getenv("CHAT_PASSWORD")
	if base == "" {
		base = "http://localhost:8080"
	}
	if user == "" || password == "" {
		return errors.New("set CHAT_USER and CHAT_PASSWORD")
	}
	c := client.New(base)
	if _, err := c.Login(ctx, user, password); err != nil {
		return err
	}
	for _, room := range rooms {
		if _, err := c.Join(ctx, room); err != nil {
			return fmt.Errorf("join %s: %w", room, err)
		}
	}
	return c.Subscribe(ctx, func(e client.Event) error {
		if strings.EqualFold(e.From, user) {
			return nil // its own messages come back on its stream too
		}
		var err error
		switch {
		case e.Kind == client.KindReady:
			log.Info("ready", "user", e.User, "rooms", rooms)
		case e.Kind == client.KindMessage && strings.TrimSpace(e.Text) == "!ping":
			_, err = c.Post(ctx, e.Room, "pong")
		case e.Kind == client.KindPrivate && !strings.HasPrefix(e.Text, echoPrefix):
			_, err = c.Send(ctx, e.From, echoPrefix+e.Text)
		}
		if err != nil && ctx.Err() == nil {
			// A refusal (a 429, say) costs one answer, not the bot.
			log.Warn("cannot answer", "to", e.From, "err", err)
		}
		return nil
	}, client.OnReconnect(func(err error, delay time.Duration) {
		log.Warn("stream lost; reconnecting", "err", err, "in", delay)
	}))
}
