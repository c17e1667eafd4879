package handlers

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ssechat/ssechat/chat"
	"github.com/ssechat/ssechat/limits"
)

// Census is what the limits read from the chat: counts, no I/O.
type Census interface {
	// StreamsOf counts user's open streams, on every instance of the
	// cluster as far as it can tell.
	StreamsOf(ctx context.Context, user string) int
	// RoomExists reports whether anyone ever joined room.
	RoomExists(room string) bool
}

// guards are the abuse limits of the HTTP edge (see limits.Config); a nil
// limiter is a limit that is off, and costs a nil check.
type guards struct {
	cfg                       limits.Config
	messages                  limits.Limiter // per user
	failedByName, failedByIP  limits.Limiter // per lower-cased username, per address
	registrations             limits.Limiter // per address
	rooms                     limits.Limiter // per user
	reads                     limits.Limiter // per user
	streams                   int
	msgRule, nameRule, ipRule limits.Rule
	regRule, roomRule         limits.Rule
	readRule                  limits.Rule
}

func newGuards(cfg limits.Config, backend limits.Backend) guards {
	if backend == nil {
		backend = limits.Memory{}
	}
	g := guards{
		cfg:      cfg,
		streams:  cfg.Streams(),
		msgRule:  cfg.Messages(),
		nameRule: cfg.FailedLoginsName(),
		ipRule:   cfg.FailedLoginsIP(),
		regRule:  cfg.Registrations(),
		roomRule: cfg.Rooms(),
		readRule: cfg.Reads(),
	}
	limiter := func(r limits.Rule) limits.Limiter {
		if r.Off() {
			return nil
		}
		return backend.Limiter(r)
	}
	g.messages = limiter(g.msgRule)
	g.failedByName = limiter(g.nameRule)
	g.failedByIP = limiter(g.ipRule)
	g.registrations = limiter(g.regRule)
	g.rooms = limiter(g.roomRule)
	g.reads = limiter(g.readRule)
	return g
}

// tooMany refuses the request with 429, Retry-After in whole seconds and
// an error that names the limit and says when to retry. limit names it
// for the metrics.
func (s *Server) tooMany(c *gin.Context, limit string, retryAfter time.Duration, what string) {
	secs := limits.Seconds(retryAfter)
	s.rateLimited(limit)
	c.Header("Retry-After", strconv.Itoa(secs))
	c.AbortWithStatusJSON(http.StatusTooManyRequests, gin.H{"error": fmt.Sprintf("%s: retry in %d s", what, secs)})
}

// limitMessages runs before a message is posted, room or private: a
// refused post costs no body read, no validation, no commit.
func (s *Server) limitMessages(c *gin.Context) {
	if l := s.guards.messages; l != nil {
		if ok, wait := l.Allow(c.Request.Context(), currentUser(c)); !ok {
			s.tooMany(c, "messages", wait, fmt.Sprintf("too many messages: at most %d at once, then %s a second",
				s.guards.msgRule.Burst, strconv.FormatFloat(s.guards.cfg.MessageRate, 'g', -1, 64)))
			return
		}
	}
	c.Next()
}

// limitReads runs before a read mark, of a room or a conversation.
func (s *Server) limitReads(c *gin.Context) {
	if l := s.guards.reads; l != nil {
		if ok, wait := l.Allow(c.Request.Context(), currentUser(c)); !ok {
			s.tooMany(c, "reads", wait, fmt.Sprintf("too many read marks: at most %d a minute", s.guards.readRule.Burst))
			return
		}
	}
	c.Next()
}

// streamRetry is the Retry-After of a refused stream: no bucket says when
// one of the others closes.
const streamRetry = 5 * time.Second

// admitStream caps the streams a user holds open, across the instances
// with --redis. It reads the count before the stream registers, and the
// other instances' counts as they last reported them, so opens racing
// each other may pass together: the cap holds to within the opens in
// flight at once.
func (s *Server) admitStream(c *gin.Context) bool {
	most := s.guards.streams
	if most <= 0 {
		return true
	}
	if s.chat.StreamsOf(c.Request.Context(), currentUser(c)) < most {
		return true
	}
	s.tooMany(c, "streams", streamRetry, fmt.Sprintf("too many open streams: at most %d per user; close one", most))
	return false
}

// admitRoom counts a join that would create room against the user's rooms
// per hour. A join of a room that exists is never refused.
func (s *Server) admitRoom(c *gin.Context, room string) bool {
	l := s.guards.rooms
	if l == nil || s.chat.RoomExists(room) {
		return true
	}
	ok, wait := l.Allow(c.Request.Context(), currentUser(c))
	if !ok {
		s.tooMany(c, "rooms", wait, fmt.Sprintf("too many new rooms: at most %d an hour per user", s.guards.roomRule.Burst))
	}
	return ok
}

// loginAttempt is a login the limits let through. It holds a token of the
// failed-login bucket of its name until it ends: a flood of parallel
// guesses at one account gets no more tries than the budget, since each is
// counted before its password is checked. done gives it back unless the
// password was wrong.
//
// The address's bucket is only looked at before, and charged after a wrong
// password: holding its tokens too would refuse a burst of right
// passwords from one address — a company behind one NAT logging in at
// nine, or a load test — as "failed logins". Parallel guesses from one
// address can then overshoot its budget by as many as are in flight at
// once, which the bcrypt bound (auth) keeps small.
type loginAttempt struct {
	s            *Server
	name, ip     string
	byName, byIP bool // tokens held
}

// admitLogin checks the failed-login budgets of the name and the client
// address and, when the login would register the name, the address's
// registrations. A refused login is answered 429 and ok is false.
//
// The 429s reveal no more than a 401 does: a name's budget only shrinks
// by wrong passwords, which only a registered name has, and a 401 already
// tells a registered name from a free one (which a login registers).
func (s *Server) admitLogin(c *gin.Context, name string) (a loginAttempt, ok bool) {
	g := &s.guards
	a = loginAttempt{s: s, name: strings.ToLower(name), ip: addrKey(s.clientIP(c))}
	if !chat.ValidUsername(name) {
		return a, true // a 400 checks no password
	}
	ctx := c.Request.Context()
	if l := g.failedByIP; l != nil {
		ok, wait := l.Allow(ctx, a.ip)
		if !ok {
			s.tooMany(c, "login-ip", wait, fmt.Sprintf("too many failed logins from your address: at most %d per %s", g.ipRule.Burst, window(limits.LoginWindow)))
			return a, false
		}
		l.Refund(ctx, a.ip) // looked at, not held: see loginAttempt
		a.byIP = true
	}
	if l := g.failedByName; l != nil {
		ok, wait := l.Allow(ctx, a.name)
		if !ok {
			a.done(ctx, nil)
			s.tooMany(c, "login-name", wait, fmt.Sprintf("too many failed logins for this username: at most %d per %s", g.nameRule.Burst, window(limits.LoginWindow)))
			return a, false
		}
		a.byName = true
	}
	if l := g.registrations; l != nil {
		// Only a login that registers counts, and only the store knows
		// which does: one indexed read, beside a bcrypt of ≈ 50 ms.
		if _, err := s.accounts.Canonical(ctx, name); chat.ErrorCode(err) == chat.ENOTFOUND {
			if ok, wait := l.Allow(ctx, a.ip); !ok {
				a.done(ctx, nil)
				s.tooMany(c, "register-ip", wait, fmt.Sprintf("too many new accounts from your address: at most %d per %s", g.regRule.Burst, window(limits.RegistrationWindow)))
				return a, false
			}
		}
	}
	return a, true
}

// done ends the attempt with the login's error: the tokens it holds are
// given back unless the password was wrong.
func (a loginAttempt) done(ctx context.Context, err error) {
	// The charge and the refund must happen even if the client has gone.
	ctx = context.WithoutCancel(ctx)
	if chat.ErrorCode(err) == chat.EUNAUTHORIZED {
		if a.byIP {
			a.s.guards.failedByIP.Allow(ctx, a.ip) // charge the wrong password
		}
		return
	}
	if a.byName {
		a.s.guards.failedByName.Refund(ctx, a.name)
	}
}

// loginDone ends a login's attempt and, when the server was too busy
// checking passwords to take it (see auth), says when to retry.
func (s *Server) loginDone(c *gin.Context, a loginAttempt, err error) {
	a.done(c.Request.Context(), err)
	if chat.ErrorCode(err) == chat.EUNAVAILABLE {
		c.Header("Retry-After", "1")
	}
}

// addrKey is the key of a client address: an IPv6 address counts as its
// /64, which one subscriber usually holds whole.
func addrKey(a netip.Addr) string {
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// window says a limit's window in words: "15 minutes", "hour".
func window(d time.Duration) string {
	switch {
	case d == time.Hour:
		return "hour"
	case d%time.Hour == 0:
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return d.String()
}
