package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Client talks to one ssechat server as one user. It is safe for
// concurrent use; the zero value is not usable, call New.
type Client struct {
	base         *url.URL
	baseErr      error // a baseURL New could not use, returned by every call
	http         *http.Client
	stream       *http.Client // http without an overall Timeout (see streamClient)
	token        atomic.Pointer[string]
	retryTimeout time.Duration
}

// Option configures a Client in New.
type Option func(*Client)

// WithToken makes the client use a session token it already holds (one a
// program kept from an earlier Login) instead of logging in.
func WithToken(token string) Option {
	return func(c *Client) { c.token.Store(&token) }
}

// WithHTTPClient makes the client send every request with hc. Streams use
// a copy of hc without its Timeout, which would cut every stream at that
// age; silent streams are caught by the heartbeat watchdog instead.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.http = hc }
}

// WithRetryTimeout bounds how long a request keeps being retried after a
// network error or a 502, 503 or 504 answer (default 30 s; 0 never
// retries). The request's context bounds it too.
func WithRetryTimeout(d time.Duration) Option {
	return func(c *Client) { c.retryTimeout = d }
}

// DefaultRetryTimeout is how long a request is retried unless
// WithRetryTimeout says otherwise.
const DefaultRetryTimeout = 30 * time.Second

// New returns a client of the server at baseURL (e.g.
// "http://localhost:8080", or with a path prefix if a proxy serves it
// under one). If baseURL is not an absolute http or https URL, every call
// of the client returns an error that says so.
func New(baseURL string, opts ...Option) *Client {
	c := &Client{retryTimeout: DefaultRetryTimeout}
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	switch {
	case err != nil:
		c.baseErr = fmt.Errorf("ssechat: server URL: %w", err)
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		c.baseErr = fmt.Errorf("ssechat: server URL %q: want http://HOST[:PORT] or https://…", baseURL)
	default:
		c.base = u
	}
	for _, o := range opts {
		o(c)
	}
	if c.http == nil {
		// A transport of its own, so that CloseIdleConnections closes
		// only this client's connections.
		c.http = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	c.stream = c.http
	if c.http.Timeout != 0 {
		sc := *c.http
		sc.Timeout = 0
		c.stream = &sc
	}
	return c
}

// Token returns the session token the client authenticates with, "" before
// Login (or WithToken).
func (c *Client) Token() string {
	if t := c.token.Load(); t != nil {
		return *t
	}
	return ""
}

// CloseIdleConnections closes the client's idle keep-alive connections,
// for a program that is done with it.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// APIError is an error answer of the server: its status and the message of
// its JSON body ({"error": "..."}). Use errors.As to get it:
//
//	var apiErr *client.APIError
//	if errors.As(err, &apiErr) && apiErr.Status == http.StatusTooManyRequests {
//		time.Sleep(apiErr.RetryAfter)
//	}
type APIError struct {
	Status  int    // the HTTP status, e.g. 404
	Message string // the server's message, meant for people
	// RetryAfter is the answer's Retry-After (429 and some 503 answers);
	// 0 when it sent none.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("ssechat: %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %v)", e.RetryAfter)
	}
	return msg
}

// call is one API request.
type call struct {
	method, path string
	query        url.Values
	body         any // sent as JSON; nil sends no body
	out          any // the 2xx answer is decoded into it; nil discards it
	// key is sent as Idempotency-Key, the same on every retry, so the
	// server can tell a retry from a new message.
	key string
	// once: not retried once the server may have acted on it (a logout
	// whose answer was lost would be answered 401 the second time; a
	// login's would make a second session): only when undone.
	once bool
}

// do sends the call, retrying network errors and 502/503/504 answers with
// backoff until c.retryTimeout has passed or ctx ends.
func (c *Client) do(ctx context.Context, cl call) error {
	if c.baseErr != nil {
		return c.baseErr
	}
	var body []byte
	if cl.body != nil {
		var err error
		if body, err = json.Marshal(cl.body); err != nil {
			return fmt.Errorf("ssechat: %s %s: %w", cl.method, cl.path, err)
		}
	}
	start := time.Now()
	bo := backoff{min: 100 * time.Millisecond, max: 5 * time.Second}
	for {
		err := c.attempt(ctx, cl, body)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("ssechat: %s %s: %w", cl.method, cl.path, ctx.Err())
		}
		delay, retry := retryable(err, &bo)
		if !retry || (cl.once && !undone(err)) || time.Since(start)+delay > c.retryTimeout {
			return err
		}
		if sleep(ctx, delay) != nil {
			return fmt.Errorf("ssechat: %s %s: %w (retrying after %v)", cl.method, cl.path, ctx.Err(), err)
		}
	}
}

// undone says the server surely did nothing, so that even a call that
// must not happen twice may be tried again: the connection was never
// made, or the server answered 503 (unavailable: nothing was done).
func undone(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.Status == http.StatusServiceUnavailable
}

// retryable says whether err is worth another try, and after how long.
func retryable(err error, bo *backoff) (time.Duration, bool) {
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		return bo.next(), true // the network, or a garbled answer
	}
	switch apiErr.Status {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		if apiErr.RetryAfter > 0 {
			return apiErr.RetryAfter, true
		}
		return bo.next(), true
	}
	return 0, false
}

// attempt sends the call once.
func (c *Client) attempt(ctx context.Context, cl call, body []byte) error {
	u := *c.base
	u.Path += cl.path
	u.RawQuery = cl.query.Encode()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u.String(), r)
	if err != nil {
		return fmt.Errorf("ssechat: %s %s: %w", cl.method, cl.path, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.authorize(req)
	if cl.key != "" {
		req.Header.Set("Idempotency-Key", cl.key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("ssechat: %s %s: %w", cl.method, cl.path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("ssechat: %s %s: reading the answer: %w", cl.method, cl.path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return apiError(resp, data)
	}
	if cl.out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, cl.out); err != nil {
			return fmt.Errorf("ssechat: %s %s: decoding the answer: %w", cl.method, cl.path, err)
		}
	}
	return nil
}

// authorize adds the bearer token, if the client has one. Never a cookie:
// a bearer request needs neither a content type nor an Origin check.
func (c *Client) authorize(req *http.Request) {
	if t := c.Token(); t != "" {
		req.Header.Set("Authorization", "Bearer "+t)
	}
}

// apiError turns a non-2xx answer into an *APIError. The server's answers
// are JSON; a proxy's or net/http's own may be plain text.
func apiError(resp *http.Response, body []byte) *APIError {
	e := &APIError{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	var js struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &js) == nil && js.Error != "" {
		e.Message = js.Error
	} else if text := strings.TrimSpace(string(body)); text != "" && len(text) < 512 {
		e.Message = text
	} else {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// retryAfter parses a Retry-After header: seconds, or an HTTP date.
func retryAfter(h string) time.Duration {
	if h == "" {
		return 0
	}
	if secs, err := strconv.Atoi(h); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// backoff is exponential with jitter, from min up to max.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	// ±20%, so that many clients cut off at once do not come back at once.
	return b.cur - b.cur/5 + rand.N(2*b.cur/5+1)
}

func (b *backoff) reset() { b.cur = 0 }

// sleep waits d or until ctx ends, whichever is first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
