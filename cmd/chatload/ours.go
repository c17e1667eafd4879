package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ours drives ssechat over its HTTP contract: POST /api/login, POST
// /api/rooms/{room}/join, POST /api/rooms/{room}/messages and the SSE stream
// GET /api/stream with a Bearer token.
type ours struct {
	eps       []endpoint // the instances; each user talks to one (endpointFor)
	password  string
	dial      *dialers
	hc        *http.Client // logins and joins, shared
	sess      *sessionCache
	col       *collector
	log       *slog.Logger
	reconnect bool
	retry     time.Duration
	conc      int // parallel logins and joins
	readBuf   int // bytes read from a stream at once
	// keyed posts carry an Idempotency-Key each (unique: the server stores
	// every one), to measure what exactly-once posting costs.
	keyed bool
}

var _ system = (*ours)(nil)

// endpoint is one instance of the server.
type endpoint struct {
	host string // host:port
	base string // http://host:port
}

// endpointIndex picks, among n instances, the one a user talks to: the
// number its name ends in (names() makes them) modulo n, so each kind of
// client — subscribers, publishers, posters, members, newcomers — is spread
// round-robin by its index, and every request of one user (login, join,
// stream, resume, posts) goes to the same instance. A name without a number
// is hashed.
func endpointIndex(user string, n int) int {
	if n <= 1 {
		return 0
	}
	i := len(user)
	for i > 0 && user[i-1] >= '0' && user[i-1] <= '9' && len(user)-i < 18 {
		i--
	}
	if i < len(user) {
		v, _ := strconv.ParseUint(user[i:], 10, 64)
		return int(v % uint64(n))
	}
	h := fnv.New32a()
	h.Write([]byte(user))
	return int(h.Sum32() % uint32(n))
}

func (o *ours) at(user string) endpoint { return o.eps[endpointIndex(user, len(o.eps))] }

// newOurs drives the instances at hosts (host:port each; any instance
// serves any user, as a cluster on one database does).
func newOurs(hosts []string, password string, dial *dialers, sess *sessionCache, col *collector, log *slog.Logger, conc int, reconnect bool, retry time.Duration, streams int) *ours {
	eps := make([]endpoint, len(hosts))
	for i, h := range hosts {
		eps[i] = endpoint{host: h, base: "http://" + h}
	}
	return &ours{
		eps:      eps,
		password: password,
		dial:     dial,
		hc: &http.Client{
			Timeout: 60 * time.Second,
			Transport: &http.Transport{
				DialContext:         dial.DialContext,
				MaxIdleConns:        conc,
				MaxIdleConnsPerHost: conc,
				IdleConnTimeout:     30 * time.Second,
			},
		},
		sess:      sess,
		col:       col,
		log:       log,
		reconnect: reconnect,
		retry:     retry,
		conc:      conc,
		readBuf:   streamReadBuffer(streams),
	}
}

// streamReadBuffer sizes a stream's read buffer. A few streams carrying
// thousands of events a second each (the write path) read in large pieces,
// one system call per server write of up to tens of KiB; thousands of
// streams (fan-out, idle) keep small buffers, so that 10,000 stay cheap.
func streamReadBuffer(streams int) int {
	if streams <= 1000 {
		return 64 << 10
	}
	return 4 << 10
}

// httpStatusError is a response other than the one expected.
type httpStatusError struct {
	Op   string
	Code int
	Body string
}

func (e *httpStatusError) Error() string {
	return fmt.Sprintf("%s: HTTP %d %s", e.Op, e.Code, strings.TrimSpace(e.Body))
}

func isUnauthorized(err error) bool {
	var se *httpStatusError
	return errors.As(err, &se) && se.Code == http.StatusUnauthorized
}

// login registers or logs in user and caches the token.
func (o *ours) login(ctx context.Context, user string) (string, error) {
	body, _ := json.Marshal(map[string]string{"username": user, "password": o.password})
	var out struct {
		Token string `json:"token"`
	}
	if err := o.call(ctx, o.hc, o.at(user), "", http.MethodPost, "/api/login", body, http.StatusOK, &out); err != nil {
		return "", err
	}
	if out.Token == "" {
		return "", fmt.Errorf("login %s: no token in answer", user)
	}
	o.sess.Set(user, out.Token)
	return out.Token, nil
}

// token returns a cached session token, logging in only when there is none:
// bcrypt stays out of the measured paths.
func (o *ours) token(ctx context.Context, user string) (string, error) {
	if t := o.sess.Get(user); t != "" {
		return t, nil
	}
	return o.login(ctx, user)
}

// authed runs an authenticated call; a 401 (a token cached against another
// database) logs in again once.
func (o *ours) authed(ctx context.Context, user, method, path string, body []byte, want int) error {
	tok, err := o.token(ctx, user)
	if err != nil {
		return err
	}
	err = o.call(ctx, o.hc, o.at(user), tok, method, path, body, want, nil)
	if isUnauthorized(err) {
		if tok, err = o.login(ctx, user); err != nil {
			return err
		}
		err = o.call(ctx, o.hc, o.at(user), tok, method, path, body, want, nil)
	}
	return err
}

func (o *ours) call(ctx context.Context, hc *http.Client, ep endpoint, token, method, path string, body []byte, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, ep.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		return &httpStatusError{Op: method + " " + path, Code: resp.StatusCode, Body: string(data)}
	}
	if out != nil {
		return json.Unmarshal(data, out)
	}
	return nil
}

func (o *ours) join(ctx context.Context, user, room string) error {
	return o.authed(ctx, user, http.MethodPost, "/api/rooms/"+room+"/join", []byte("{}"), http.StatusOK)
}

func (o *ours) Prepare(ctx context.Context, users []string, room string) error {
	var retried atomic.Int64
	failed, err := forEach(ctx, len(users), o.conc, func(ctx context.Context, i int) error {
		var err error
		// Setup is not measured: retry server errors (SQLITE_BUSY under a
		// burst of logins, say) a few times, but count and report them.
		for attempt := 0; attempt < 4; attempt++ {
			if room == "" {
				_, err = o.token(ctx, users[i])
			} else {
				err = o.join(ctx, users[i], room)
			}
			var se *httpStatusError
			if err == nil || !errors.As(err, &se) || se.Code < 500 {
				return err
			}
			retried.Add(1)
			if sleepCtx(ctx, time.Duration(50<<attempt)*time.Millisecond) != nil {
				return err
			}
		}
		return err
	})
	if n := retried.Load(); n > 0 {
		o.log.Warn("setup requests retried after server errors", "retries", n)
	}
	if err != nil {
		return fmt.Errorf("prepare: %d of %d users failed: %w", failed, len(users), err)
	}
	return nil
}

func (o *ours) Enter(ctx context.Context, sub int, user, room string) error {
	if _, err := o.login(ctx, user); err != nil {
		return err
	}
	if err := o.join(ctx, user, room); err != nil {
		return err
	}
	return o.Open(ctx, sub, user, room)
}

// Open starts the connection's reader goroutine and waits for its `ready`
// event. Later failures are counted as disconnects and, like a browser's
// EventSource, resumed with Last-Event-ID.
func (o *ours) Open(ctx context.Context, sub int, user, _ string) error {
	ready := make(chan error, 1)
	go o.streamLoop(ctx, sub, user, ready)
	select {
	case err := <-ready:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// maxEarlyRetries bounds reconnects of a stream that never became ready.
const maxEarlyRetries = 5

func (o *ours) streamLoop(ctx context.Context, sub int, user string, ready chan<- error) {
	var (
		p        sseParser
		isReady  bool
		relogged bool
		attempts int
	)
	onReady := func() {
		if !isReady {
			isReady = true
			ready <- nil
		}
	}
	for {
		tok, err := o.token(ctx, user)
		if err == nil {
			err = o.streamOnce(ctx, o.at(user).host, sub, tok, &p, onReady)
		}
		if ctx.Err() != nil {
			if !isReady {
				ready <- ctx.Err()
			}
			return
		}
		if isUnauthorized(err) && !relogged {
			relogged = true
			if _, err = o.login(ctx, user); err == nil {
				continue
			}
		}
		if !isReady {
			// Closed before `ready` (the server sheds connections that fall
			// behind while it seats them): retry a few times, as EventSource
			// would, and count it.
			attempts++
			if !o.reconnect || attempts > maxEarlyRetries {
				ready <- err
				return
			}
			o.col.earlyRetries.Add(1)
			o.log.Debug("stream closed before ready; retrying", "user", user, "err", err)
			if sleepCtx(ctx, o.retry) != nil {
				ready <- ctx.Err()
				return
			}
			continue
		}
		o.col.disconnects.Add(1)
		o.log.Debug("stream ended", "user", user, "err", err)
		if !o.reconnect {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(o.retry):
		}
		o.col.reconnects.Add(1)
	}
}

// streamOnce is one SSE connection, written by hand: a raw request and
// http.ReadResponse for the status line and chunked decoding, then a bufio
// line reader. One goroutine and two buffers per connection (small ones
// when there are thousands, see streamReadBuffer) keep the client's cost low
// enough to hold 10,000 streams on the server's own cores.
// An event's receipt time is that of the read that brought its last byte:
// one clock reading per read, not per event.
func (o *ours) streamOnce(ctx context.Context, host string, sub int, token string, p *sseParser, onReady func()) error {
	sc, err := o.dialStream(ctx, host, token, p.LastID())
	if err != nil {
		return err
	}
	defer sc.conn.Close()
	stop := context.AfterFunc(ctx, func() { sc.conn.Close() })
	defer stop()
	return o.readEvents(sc, sub, p, onReady)
}

// streamConn is an SSE response whose head was read: its connection, and
// the reader of its events.
type streamConn struct {
	conn    net.Conn
	stamped *stampedReader
	rd      *bufio.Reader
}

// dialStream opens a stream on host (from the source address ctx may
// name, see withSource), resuming after lastID if not empty, and reads
// the answer's head: anything but 200 is an *httpStatusError. ctx bounds
// only the opening; the caller closes the connection.
func (o *ours) dialStream(ctx context.Context, host, token, lastID string) (*streamConn, error) {
	conn, err := o.dial.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	sc, err := o.streamHead(conn, host, token, lastID)
	if !stop() || err != nil {
		conn.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, err
	}
	return sc, nil
}

func (o *ours) streamHead(conn net.Conn, host, token, lastID string) (*streamConn, error) {
	var req bytes.Buffer
	req.WriteString("GET /api/stream HTTP/1.1\r\nHost: ")
	req.WriteString(host)
	req.WriteString("\r\nAuthorization: Bearer ")
	req.WriteString(token)
	req.WriteString("\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n")
	if lastID != "" {
		req.WriteString("Last-Event-ID: " + lastID + "\r\n")
	}
	req.WriteString("\r\n")
	if _, err := conn.Write(req.Bytes()); err != nil {
		return nil, err
	}
	stamped := &stampedReader{r: conn}
	br := bufio.NewReaderSize(stamped, o.readBuf)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, &httpStatusError{Op: "GET /api/stream", Code: resp.StatusCode, Body: string(b)}
	}
	rd := br
	if len(resp.TransferEncoding) > 0 || resp.ContentLength >= 0 {
		rd = bufio.NewReaderSize(resp.Body, 4096)
	}
	return &streamConn{conn: conn, stamped: stamped, rd: rd}, nil
}

// readEvents reads sc's events until the connection fails or closes,
// hands messages to the collector under sub and calls onReady at each
// `ready`. A partial event left by an earlier connection is dropped, as
// EventSource drops it; the last event id is kept.
func (o *ours) readEvents(sc *streamConn, sub int, p *sseParser, onReady func()) error {
	p.Restart()
	rd, stamped := sc.rd, sc.stamped
	var scratch []byte
	for {
		line, err := readLine(rd, &scratch)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("stream closed: %w", err)
			}
			return err
		}
		ev, ok := p.Line(line)
		if !ok {
			continue
		}
		switch string(ev.Name) {
		case "message":
			o.col.message(sub, ev.Data, stamped.at)
		case "ready":
			o.col.other()
			onReady()
		case "reset":
			o.col.resets.Add(1)
			o.col.other()
		default:
			o.col.other()
		}
	}
}

// stampedReader notes when each read returned.
type stampedReader struct {
	r  io.Reader
	at int64 // Unix nanoseconds
}

func (s *stampedReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.at = time.Now().UnixNano()
	return n, err
}

// Publisher gives the poster its own keep-alive connections, so posters do
// not queue behind each other or behind the setup traffic.
func (o *ours) Publisher(ctx context.Context, _ int, user, room string) (poster, error) {
	if _, err := o.token(ctx, user); err != nil {
		return nil, err
	}
	return &oursPoster{
		o:    o,
		host: o.at(user).host,
		user: user,
		path: "/api/rooms/" + room + "/messages",
		idle: make(chan *postConn, maxInFlight),
	}, nil
}

func (o *ours) PosterListens() bool { return false }

// oursPoster posts over raw HTTP/1.1 keep-alive connections, one per
// message in flight: net/http's client spends two goroutines and several
// hand-offs on every request, CPU the write path's server needs on the
// same two cores.
type oursPoster struct {
	o    *ours
	host string // the user's instance
	user string
	path string
	idle chan *postConn
	sent atomic.Int64 // numbers the Idempotency-Keys
}

type postConn struct {
	conn net.Conn
	br   *bufio.Reader
	req  []byte
}

// postTimeout bounds one POST, answer included.
const postTimeout = 30 * time.Second

func (p *oursPoster) Post(ctx context.Context, text []byte) error {
	err := p.post(ctx, text)
	if isUnauthorized(err) {
		if _, err = p.o.login(ctx, p.user); err != nil {
			return err
		}
		err = p.post(ctx, text)
	}
	return err
}

func (p *oursPoster) post(ctx context.Context, text []byte) error {
	var pc *postConn
	reused := false
	select {
	case pc = <-p.idle:
		reused = true
	default:
		conn, err := p.o.dial.DialContext(ctx, "tcp", p.host)
		if err != nil {
			return err
		}
		pc = &postConn{conn: conn, br: bufio.NewReaderSize(conn, 4096)}
	}
	key := ""
	if p.o.keyed {
		key = p.user + "-" + strconv.FormatInt(p.sent.Add(1), 10)
	}
	keep, err := pc.roundTrip(ctx, p.host, p.path, p.o.sess.Get(p.user), key, text)
	if !keep {
		pc.conn.Close()
		if reused && isStale(err) && ctx.Err() == nil {
			// The server closed the idle connection (its idle timeout)
			// as the request went out: what a browser retries.
			return p.post(ctx, text)
		}
		return err
	}
	select {
	case p.idle <- pc:
	default:
		pc.conn.Close()
	}
	return err
}

// isStale tells a keep-alive connection the server had closed (no answer
// at all) from a refusal or a timeout.
func isStale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// Close closes the poster's idle keep-alive connections: the server
// would otherwise hold them until its idle timeout.
func (p *oursPoster) Close() {
	for {
		select {
		case pc := <-p.idle:
			pc.conn.Close()
		default:
			return
		}
	}
}

// roundTrip posts {"text": text}, with an Idempotency-Key unless key is
// "", and reads the answer. The text is digits, spaces and ASCII letters
// only, so it needs no JSON escaping. It reports whether the connection
// may carry another request, which it may after a refusal the server
// answered in full (a 429 under a flood).
func (pc *postConn) roundTrip(ctx context.Context, host, path, token, key string, text []byte) (bool, error) {
	stop := context.AfterFunc(ctx, func() { pc.conn.SetDeadline(time.Now()) })
	defer stop()
	if err := pc.conn.SetDeadline(time.Now().Add(postTimeout)); err != nil {
		return false, err
	}
	body := len(`{"text":""}`) + len(text)
	r := append(pc.req[:0], "POST "...)
	r = append(r, path...)
	r = append(r, " HTTP/1.1\r\nHost: "...)
	r = append(r, host...)
	r = append(r, "\r\nAuthorization: Bearer "...)
	r = append(r, token...)
	if key != "" {
		r = append(r, "\r\nIdempotency-Key: "...)
		r = append(r, key...)
	}
	r = append(r, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	r = strconv.AppendInt(r, int64(body), 10)
	r = append(r, "\r\n\r\n{\"text\":\""...)
	r = append(r, text...)
	r = append(r, "\"}"...)
	pc.req = r
	if _, err := pc.conn.Write(r); err != nil {
		return false, err
	}
	resp, err := http.ReadResponse(pc.br, nil)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
		keep := err == nil && !resp.Close && resp.ContentLength == int64(len(b))
		return keep, &httpStatusError{Op: "POST messages", Code: resp.StatusCode, Body: string(b)}
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return false, err
	}
	return !resp.Close, nil
}

// sessionCache keeps session tokens in a file between runs, so accounts are
// created once and bcrypt does not dominate connect time.
type sessionCache struct {
	mu     sync.Mutex
	path   string
	tokens map[string]string
	dirty  bool
}

func loadSessions(path string) (*sessionCache, error) {
	s := &sessionCache{path: path, tokens: map[string]string{}}
	if path == "" {
		return s, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &s.tokens); err != nil {
		return nil, fmt.Errorf("sessions file %s: %w", path, err)
	}
	return s, nil
}

func (s *sessionCache) Get(user string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens[user]
}

func (s *sessionCache) Set(user, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[user] = token
	s.dirty = true
}

// Save writes the file atomically (temp file + rename).
func (s *sessionCache) Save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.path == "" || !s.dirty {
		return nil
	}
	data, err := json.Marshal(s.tokens)
	if err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	s.dirty = false
	return os.Rename(tmp, s.path)
}
