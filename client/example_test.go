package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ssechat/ssechat/app"
	"github.com/ssechat/ssechat/client"
)

// exampleServer runs a real ssechat server on a loopback port for the
// examples, on a SQLite file that stop removes. (Against your own server,
// pass its URL to client.New.)
func exampleServer() (url string, stop func()) {
	dir, err := os.MkdirTemp("", "ssechat-example")
	if err != nil {
		panic(err)
	}
	a, err := app.New(context.Background(), app.Config{
		DB:           filepath.Join(dir, "chat.db"),
		PasswordCost: 4,
		Log:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(a.Handler())
	return srv.URL, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = a.Broker().Shutdown(ctx)
		srv.CloseClientConnections()
		srv.Close()
		_ = a.Close()
		os.RemoveAll(dir)
	}
}

// Two users in a room: bob posts, alice's subscription hands her the
// message as a typed event.
func Example() {
	base, stop := exampleServer()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	alice, bob := client.New(base), client.New(base)
	for _, u := range []struct {
		c          *client.Client
		name, pass string
	}{{alice, "alice", "secret-a"}, {bob, "bob", "secret-b"}} {
		// The first login of a free name registers it.
		if _, err := u.c.Login(ctx, u.name, u.pass); err != nil {
			panic(err)
		}
		if _, err := u.c.Join(ctx, "lobby"); err != nil {
			panic(err)
		}
	}

	err := alice.Subscribe(ctx, func(e client.Event) error {
		switch e.Kind {
		case client.KindReady: // live: anything posted now reaches her
			if _, err := bob.Post(ctx, "lobby", "hello alice"); err != nil {
				return err
			}
		case client.KindMessage:
			fmt.Printf("%s in %s: %s\n", e.From, e.Room, e.Text)
			cancel() // enough for an example
		}
		return nil
	})
	fmt.Println(errors.Is(err, context.Canceled))
	// Output:
	// bob in lobby: hello alice
	// true
}

// A program that must see every message across its own restarts keeps the
// id of the last event it handled and resumes from it.
func ExampleResumeFrom() {
	base, stop := exampleServer()
	defer stop()
	ctx := context.Background()
	c := client.New(base)
	if _, err := c.Login(ctx, "alice", "secret-a"); err != nil {
		panic(err)
	}
	if _, err := c.Join(ctx, "lobby"); err != nil {
		panic(err)
	}
	first, _ := c.Post(ctx, "lobby", "first")
	c.Post(ctx, "lobby", "second")
	c.Post(ctx, "lobby", "third")

	// As if the program had stored first.ID before it was stopped.
	last := first.ID
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.Subscribe(ctx, func(e client.Event) error {
		switch e.Kind {
		case client.KindMessage:
			fmt.Println(e.Text)
		case client.KindReset:
			fmt.Println("too much missed: reload history")
		case client.KindReady:
			cancel()
		}
		last = e.ID // persist it here
		return nil
	}, client.ResumeFrom(last))
	// Output:
	// second
	// third
}

// Errors the server answers are *APIError; a 429 carries when to retry.
func ExampleAPIError() {
	base, stop := exampleServer()
	defer stop()
	ctx := context.Background()
	c := client.New(base)
	if _, err := c.Login(ctx, "alice", "secret-a"); err != nil {
		panic(err)
	}
	_, err := c.Post(ctx, "nowhere", "hello?")
	var apiErr *client.APIError
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.Status, apiErr.Message)
		if apiErr.Status == http.StatusTooManyRequests {
			time.Sleep(apiErr.RetryAfter)
		}
	}
	// Output:
	// 404 no room "nowhere"
}

// Pages of history go backwards from the newest: pass the oldest id held
// as Before.
func ExampleClient_History() {
	base, stop := exampleServer()
	defer stop()
	ctx := context.Background()
	c := client.New(base)
	if _, err := c.Login(ctx, "alice", "secret-a"); err != nil {
		panic(err)
	}
	if _, err := c.Join(ctx, "lobby"); err != nil {
		panic(err)
	}
	for _, text := range []string{"one", "two", "three", "four", "five"} {
		if _, err := c.Post(ctx, "lobby", text); err != nil {
			panic(err)
		}
	}
	page, err := c.History(ctx, "lobby", client.Limit(2))
	for err == nil && len(page) > 0 {
		var texts []string
		for _, e := range page {
			texts = append(texts, e.Text)
		}
		fmt.Println(strings.Join(texts, " "))
		page, err = c.History(ctx, "lobby", client.Limit(2), client.Before(page[0].ID))
	}
	// Output:
	// four five
	// two three
	// one
}
