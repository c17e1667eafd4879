// Package client is the Go client of ssechat, for programs that chat: bots,
// command-line tools, bridges.
//
// A Client logs in (or is given a token), joins rooms, posts and reads
// history over the JSON API, and Subscribe reads the user's Server-Sent
// Events stream as typed events. Subscribe reconnects by itself with
// backoff and resumes from the last event handled, so a program sees every
// message exactly once and in order across dropped connections and server
// restarts; when the server cannot fill a gap it says so with a KindReset
// event, and the program reloads history.
//
//	c := client.New("http://localhost:8080")
//	if _, err := c.Login(ctx, "alice", "secret"); err != nil { ... }
//	if _, err := c.Join(ctx, "lobby"); err != nil { ... }
//	err := c.Subscribe(ctx, func(e client.Event) error {
//		if e.Kind == client.KindMessage {
//			fmt.Printf("%s in %s: %s\n", e.From, e.Room, e.Text)
//		}
//		return nil
//	})
//
// Every request authenticates with the bearer token (never a cookie). Errors
// the server answers come back as *APIError, carrying the status, the
// server's message and Retry-After. Requests are retried on network
// errors and 502/503/504 answers (see WithRetryTimeout); messages carry an
// Idempotency-Key, the same on each retry, so that a retry is not stored
// twice by a server that keeps them.
//
// The stream is read with github.com/r3labs/sse/v2's client; see
// docs/design.md in the repository for what it takes to use it right.
package client
