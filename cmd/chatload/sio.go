package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// socketIO drives the baseline (bench/socketio) over Socket.IO's WebSocket
// transport, speaking Engine.IO v4 / Socket.IO v5 by hand: "0{..}" open,
// "40" connect, "2" ping answered by "3", "42[event,payload]" events and
// "42<id>[..]" / "43<id>[..]" for acknowledgements.
type socketIO struct {
	url    string
	dialer *websocket.Dialer
	col    *collector
	log    *slog.Logger
}

var _ system = (*socketIO)(nil)

func newSocketIO(host string, dial *dialers, col *collector, log *slog.Logger) *socketIO {
	return &socketIO{
		url: "ws://" + host + "/socket.io/?EIO=4&transport=websocket",
		dialer: &websocket.Dialer{
			NetDialContext:   dial.DialContext,
			HandshakeTimeout: 60 * time.Second,
			ReadBufferSize:   2048,
			WriteBufferSize:  1024,
			// One pool for all connections: most are idle writers.
			WriteBufferPool: &sync.Pool{},
		},
		col: col,
		log: log,
	}
}

// Socket.IO has no accounts or durable rooms: nothing to prepare.
func (s *socketIO) Prepare(context.Context, []string, string) error { return nil }

func (s *socketIO) PosterListens() bool { return true }

func (s *socketIO) Enter(ctx context.Context, sub int, user, room string) error {
	return s.Open(ctx, sub, user, room)
}

func (s *socketIO) Open(ctx context.Context, sub int, user, room string) error {
	_, err := s.connect(ctx, sub, user, room)
	return err
}

func (s *socketIO) Publisher(ctx context.Context, sub int, user, room string) (poster, error) {
	c, err := s.connect(ctx, sub, user, room)
	if err != nil {
		return nil, err
	}
	return c, nil
}

type sioConn struct {
	ws  *websocket.Conn
	wmu sync.Mutex // gorilla allows one writer at a time

	amu     sync.Mutex
	acks    map[uint64]chan struct{}
	nextAck uint64
	closed  chan struct{}
}

// connect opens a connection, joins room (when not empty) and waits for the
// server's 'login' answer, or only for the namespace connect without a room.
func (s *socketIO) connect(ctx context.Context, sub int, user, room string) (*sioConn, error) {
	ws, _, err := s.dialer.DialContext(ctx, s.url, nil)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { ws.Close() })
	c := &sioConn{ws: ws, acks: map[uint64]chan struct{}{}, closed: make(chan struct{})}
	fail := func(err error) (*sioConn, error) {
		stop()
		ws.Close()
		return nil, err
	}
	// Engine.IO open packet, then the Socket.IO namespace connect.
	if _, data, err := ws.ReadMessage(); err != nil {
		return fail(err)
	} else if len(data) == 0 || data[0] != '0' {
		return fail(fmt.Errorf("socket.io: expected open packet, got %.40q", data))
	}
	if err := c.write([]byte("40")); err != nil {
		return fail(err)
	}
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return fail(err)
		}
		if bytes.HasPrefix(data, []byte("40")) {
			break
		}
		if len(data) == 1 && data[0] == '2' {
			if err := c.write([]byte("3")); err != nil {
				return fail(err)
			}
		}
	}
	ready := make(chan struct{})
	if room == "" {
		close(ready)
	} else {
		payload, _ := json.Marshal(map[string]string{"roomname": room, "username": user})
		if err := c.write(appendEmit(nil, "join room", payload, -1)); err != nil {
			return fail(err)
		}
	}
	go func() {
		defer stop()
		err := s.readLoop(c, sub, ready)
		close(c.closed)
		if ctx.Err() == nil {
			s.col.disconnects.Add(1)
			s.log.Debug("socket.io connection ended", "user", user, "err", err)
		}
	}()
	select {
	case <-ready:
		return c, nil
	case <-c.closed:
		return nil, errors.New("socket.io: connection closed before login")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *sioConn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// readLoop reads packets into one reused buffer until the connection ends.
func (s *socketIO) readLoop(c *sioConn, sub int, ready chan struct{}) error {
	var buf bytes.Buffer
	loggedIn := false
	for {
		_, r, err := c.ws.NextReader()
		if err != nil {
			return err
		}
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			return err
		}
		pkt := buf.Bytes()
		if len(pkt) == 1 && pkt[0] == '2' {
			if err := c.write([]byte("3")); err != nil {
				return err
			}
			continue
		}
		typ, ack, body, ok := parseSIOPacket(pkt)
		if !ok {
			continue
		}
		switch typ {
		case '2': // event
			name, payload := sioEventName(body)
			switch string(name) {
			case "new message":
				s.col.message(sub, payload, time.Now().UnixNano())
			case "login":
				s.col.other()
				if !loggedIn {
					loggedIn = true
					close(ready)
				}
			default:
				s.col.other()
			}
		case '3': // ack
			c.amu.Lock()
			ch := c.acks[uint64(ack)]
			delete(c.acks, uint64(ack))
			c.amu.Unlock()
			if ch != nil {
				close(ch)
			}
		case '1': // namespace disconnect
			return errors.New("socket.io: server disconnected the namespace")
		}
	}
}

// Post emits 'new message' with an acknowledgement and waits for it.
func (c *sioConn) Post(ctx context.Context, text []byte) error {
	c.amu.Lock()
	id := c.nextAck
	c.nextAck++
	ch := make(chan struct{})
	c.acks[id] = ch
	c.amu.Unlock()
	// The marker text needs no JSON escaping.
	payload := make([]byte, 0, len(text)+2)
	payload = append(append(append(payload, '"'), text...), '"')
	if err := c.write(appendEmit(nil, "new message", payload, int64(id))); err != nil {
		return err
	}
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-c.closed:
		return errors.New("socket.io: connection closed")
	case <-t.C:
		return errors.New("socket.io: no ack within 30s")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// appendEmit encodes a Socket.IO event packet: 42[<id>]["name",payload].
func appendEmit(b []byte, name string, payload []byte, ack int64) []byte {
	b = append(b, "42"...)
	if ack >= 0 {
		b = strconv.AppendInt(b, ack, 10)
	}
	b = append(b, `["`...)
	b = append(b, name...)
	b = append(b, `",`...)
	b = append(b, payload...)
	return append(b, ']')
}

// parseSIOPacket splits an Engine.IO message packet ('4') carrying a
// Socket.IO packet: its type digit, the ack id (-1 if none) and the JSON body.
// The default namespace is the only one in use, but a "/nsp," prefix is
// skipped all the same.
func parseSIOPacket(pkt []byte) (typ byte, ack int64, body []byte, ok bool) {
	if len(pkt) < 2 || pkt[0] != '4' {
		return 0, -1, nil, false
	}
	typ = pkt[1]
	p := pkt[2:]
	if len(p) > 0 && p[0] == '/' {
		i := bytes.IndexByte(p, ',')
		if i < 0 {
			return typ, -1, nil, true
		}
		p = p[i+1:]
	}
	ack = -1
	n := 0
	for n < len(p) && p[n] >= '0' && p[n] <= '9' {
		n++
	}
	if n > 0 {
		v, err := strconv.ParseInt(string(p[:n]), 10, 64)
		if err != nil {
			return 0, -1, nil, false
		}
		ack = v
		p = p[n:]
	}
	return typ, ack, p, true
}

// sioEventName returns the event name of a body `["name",payload...]` and
// the rest after it. Names here never hold escaped quotes.
func sioEventName(body []byte) (name, rest []byte) {
	if len(body) < 3 || body[0] != '[' || body[1] != '"' {
		return nil, body
	}
	end := bytes.IndexByte(body[2:], '"')
	if end < 0 {
		return nil, body
	}
	return body[2 : 2+end], body[2+end+1:]
}
