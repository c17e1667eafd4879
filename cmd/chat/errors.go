package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/ssechat/ssechat/client"
)

// explain turns an error of the client into an exitError in plain words,
// with the exit status a script can rely on. hint, if not empty, is added
// to a 403 refusal ("join it first with: chat join ops").
func (env *environment) explain(err error, hint string) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	var apiErr *client.APIError
	if errors.As(err, &apiErr) {
		return env.refusal(apiErr, hint)
	}
	if errors.Is(err, context.Canceled) {
		return failf(exitFailed, "interrupted")
	}
	// What the client could not get an answer for, after its retries.
	cause := err
	var opErr *net.OpError
	var urlErr *url.Error
	switch {
	case errors.As(err, &opErr):
		cause = opErr
	case errors.As(err, &urlErr):
		cause = urlErr.Err
	}
	return failf(exitUnavailable, "cannot reach the server at %s (%v)%s", env.url, cause, env.triedFor())
}

// refusal explains an error answer of the server.
func (env *environment) refusal(e *client.APIError, hint string) error {
	msg := fmt.Sprintf("%s (%d)", e.Message, e.Status)
	switch {
	case e.Status == http.StatusUnauthorized:
		return failf(exitAuth, "%s: log in with: chat login USER", msg)
	case e.Status == http.StatusTooManyRequests:
		wait := ""
		if e.RetryAfter > 0 {
			wait = " in " + e.RetryAfter.Round(time.Second).String()
		}
		return failf(exitUnavailable, "%s: the server asks to wait; try again%s", msg, wait)
	case e.Status == http.StatusBadGateway || e.Status == http.StatusServiceUnavailable || e.Status == http.StatusGatewayTimeout:
		// The client retried these.
		return failf(exitUnavailable, "the server at %s is unavailable: %s%s; try again later", env.url, msg, env.triedFor())
	case e.Status >= 500:
		return failf(exitUnavailable, "the server at %s failed: %s; try again later", env.url, msg)
	case hint != "" && e.Status == http.StatusForbidden:
		return failf(exitFailed, "%s: %s", msg, hint)
	}
	return failf(exitFailed, "%s", msg)
}

// triedFor says how long the client retried, if it did.
func (env *environment) triedFor() string {
	if env.retryTimeout <= 0 {
		return ""
	}
	return fmt.Sprintf(", retried for %v", env.retryTimeout)
}

// isStatus tells whether err is the server's answer with that status.
func isStatus(err error, status int) bool {
	var apiErr *client.APIError
	return errors.As(err, &apiErr) && apiErr.Status == status
}
