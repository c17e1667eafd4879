package client_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ssechat/ssechat/app"
	"github.com/ssechat/ssechat/client"
	"github.com/ssechat/ssechat/internal/chattest"
	"github.com/ssechat/ssechat/limits"
)

// apiError fails the test unless err is an *APIError of status whose
// message contains msg, and returns it.
func apiError(t testing.TB, what string, err error, status int, msg string) *client.APIError {
	t.Helper()
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("%s: %v (%T), want an *APIError %d", what, err, err, status)
	}
	if apiErr.Status != status || !strings.Contains(apiErr.Message, msg) {
		t.Fatalf("%s: %d %q, want %d with %q", what, apiErr.Status, apiErr.Message, status, msg)
	}
	if !strings.Contains(apiErr.Error(), apiErr.Message) {
		t.Fatalf("%s: Error() %q does not say the server's message", what, apiErr.Error())
	}
	return apiErr
}

// The server's refusals come back typed, with its status and message, at
// once: none of them is retried.
func TestAPIErrors(t *testing.T) {
	srv := chattest.Start(t)
	ctx := testCtx(t)
	alice := login(t, srv.URL, "alice")
	login(t, srv.URL, "bob")

	_, err := client.New(srv.URL).Login(ctx, "alice", "wrong")
	apiError(t, "wrong password", err, http.StatusUnauthorized, `wrong password for "alice"`)

	stranger := client.New(srv.URL, client.WithToken("no-such-session"))
	_, err = stranger.Me(ctx)
	apiError(t, "unknown token", err, http.StatusUnauthorized, "session")
	_, err = client.New(srv.URL).Rooms(ctx)
	apiError(t, "no token", err, http.StatusUnauthorized, "login required")

	_, err = alice.Post(ctx, "nowhere", "hello")
	apiError(t, "post to a room nobody joined", err, http.StatusNotFound, `no room "nowhere"`)
	_, err = alice.Send(ctx, "nobody", "hello")
	apiError(t, "send to an unknown user", err, http.StatusNotFound, `no user "nobody"`)
	_, err = alice.History(ctx, "nowhere")
	apiError(t, "history of an unknown room", err, http.StatusNotFound, `no room "nowhere"`)

	if _, err := alice.Join(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	_, err = alice.History(ctx, "lobby", client.Limit(501))
	apiError(t, "limit 501", err, http.StatusBadRequest, "limit")
	_, err = alice.Join(ctx, "no spaces")
	apiError(t, "an invalid room name", err, http.StatusBadRequest, "room")
	_, err = alice.Post(ctx, "lobby", "   ")
	apiError(t, "a blank text", err, http.StatusBadRequest, "text")
	_, err = alice.Post(ctx, "lobby", "@bob not in the room")
	apiError(t, "a mention of a non-member", err, http.StatusNotFound, `"bob" is not a member`)

	bob := login(t, srv.URL, "bob")
	_, err = bob.Post(ctx, "lobby", "let me in")
	apiError(t, "a non-member's post", err, http.StatusForbidden, "not a member")
	_, err = bob.History(ctx, "lobby")
	apiError(t, "a non-member's history", err, http.StatusForbidden, "not a member")

	if err := alice.Logout(ctx, false); err != nil {
		t.Fatal(err)
	}
	_, err = alice.Me(ctx)
	apiError(t, "after logout", err, http.StatusUnauthorized, "session")
}

// A 429 comes back at once with its Retry-After: whether to wait is the
// program's choice, not a retry loop's.
func TestTooManyMessages(t *testing.T) {
	srv := chattest.Start(t, func(cfg *app.Config) {
		cfg.HTTP.Limits = limits.Config{MessageRate: 0.01, MessageBurst: 1}
	})
	ctx := testCtx(t)
	alice := login(t, srv.URL, "alice")
	if _, err := alice.Join(ctx, "lobby"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Post(ctx, "lobby", "one"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := alice.Post(ctx, "lobby", "two")
	apiErr := apiError(t, "second message", err, http.StatusTooManyRequests, "too many messages")
	if apiErr.RetryAfter < 90*time.Second || apiErr.RetryAfter > 100*time.Second {
		t.Fatalf("RetryAfter %v, want about 100 s (one message per 100 s)", apiErr.RetryAfter)
	}
	if !strings.Contains(apiErr.Error(), "retry after") {
		t.Fatalf("Error() %q does not say when to retry", apiErr.Error())
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("a 429 took %v: it must not be retried", d)
	}
	_, err = alice.Send(ctx, "alice", "to myself")
	apiError(t, "a private message past the limit", err, http.StatusTooManyRequests, "too many messages")
}

// A stream the server refuses for good ends Subscribe with the refusal:
// a 401 is not retried for ever.
func TestSubscribeUnauthorized(t *testing.T) {
	srv := chattest.Start(t)
	c := client.New(srv.URL, client.WithToken("no-such-session"))
	ctx, cancel := context.WithTimeout(context.Background(), chattest.Timeout)
	defer cancel()
	err := c.Subscribe(ctx, func(e client.Event) error {
		t.Errorf("handler called with %+v", e)
		return nil
	})
	apiError(t, "Subscribe", err, http.StatusUnauthorized, "session")
	if ctx.Err() != nil {
		t.Fatalf("Subscribe kept retrying a 401 until the context ended")
	}
}

// A server URL the client cannot use is every call's error, not a panic:
// programs take it from their users.
func TestBadServerURL(t *testing.T) {
	for _, base := range []string{"localhost:8080", "ftp://example.com", "http://", "http://[::1"} {
		c := client.New(base)
		_, loginErr := c.Login(testCtx(t), "alice", "secret")
		subErr := c.Subscribe(testCtx(t), func(client.Event) error { return nil })
		for _, err := range []error{loginErr, subErr} {
			if err == nil || !strings.Contains(err.Error(), "server URL") {
				t.Errorf("New(%q): %v, want an error naming the server URL", base, err)
			}
		}
	}
}
