// Package handlers is the HTTP edge of ssechat: routing, authentication,
// validation and JSON errors. It is the only package that knows gin.
package handlers

import (
	"context"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ssechat/ssechat/broker"
	"github.com/ssechat/ssechat/chat"
	"github.com/ssechat/ssechat/limits"
)

// Accounts logs users in and out and resolves usernames.
type Accounts interface {
	Login(ctx context.Context, name, password string) (token, username string, err error)
	// Authenticate returns the user of a session token or
	// chat.EUNAUTHORIZED (unknown, logged out or expired). renewed says
	// that the session's expiry just moved (it slides): a cookie carrying
	// the token is set again.
	Authenticate(ctx context.Context, token string) (user string, renewed bool, err error)
	// Logout ends the session on every instance, its open streams included.
	Logout(ctx context.Context, token string) error
	// LogoutAll ends every session of user on every instance, with their
	// open streams.
	LogoutAll(ctx context.Context, user string) error
	// SessionTTL is how long a session lives unused: the cookie's Max-Age.
	SessionTTL() time.Duration
	// SessionKey names a token's session without revealing the token.
	SessionKey(token string) string
	// Canonical returns a user's registered spelling or chat.ENOTFOUND.
	Canonical(ctx context.Context, name string) (string, error)
}

// Chat publishes events and serves streams. Writes return once the event is
// durable and fanned out.
type Chat interface {
	Join(ctx context.Context, user, room string) (broker.RoomState, error)
	Leave(ctx context.Context, user, room string) error
	// PostRoomOnce and PostPrivateOnce take the writer's Idempotency-Key
	// (the zero chat.Once is none); repeat says the event is the one an
	// earlier write with the key posted, and nothing was sent.
	PostRoomOnce(ctx context.Context, user, room, text string, once chat.Once) (e chat.Event, repeat bool, err error)
	PostPrivateOnce(ctx context.Context, from, to, text string, once chat.Once) (e chat.Event, repeat bool, err error)
	// Repeat finds the event an earlier write of writer's posted with
	// once's key, for a repeat that may no longer be made as new.
	Repeat(ctx context.Context, writer string, once chat.Once) (e chat.Event, found bool, err error)
	// MarkRead moves key's read marker to id, never backwards (read.go).
	MarkRead(ctx context.Context, key chat.ReadKey, id int64) error
	Rooms(ctx context.Context) []broker.RoomInfo
	// Members pages a room's members by name: up to limit after after,
	// and the after of the next page ("" if none).
	Members(ctx context.Context, room, after string, limit int) ([]broker.Member, string, error)
	// CheckMember answers as of the log's head: a join on another
	// instance a moment ago counts.
	CheckMember(ctx context.Context, user, room string) error
	RoomsOf(ctx context.Context, user string) []string
	// ServeStream serves user's stream; session is the key of the
	// session that opened it, so that a logout can close it.
	ServeStream(ctx context.Context, w http.ResponseWriter, r *http.Request, user, session string, resume broker.Resume)
	Census // what the limits count (limits.go)
}

// History reads pages of past messages, oldest first.
type History interface {
	RoomHistory(ctx context.Context, room string, before int64, limit int) ([]chat.Event, error)
	PrivateHistory(ctx context.Context, a, b string, before int64, limit int) ([]chat.Event, error)
	Conversations(ctx context.Context, user string) ([]chat.Conversation, error)
	Reads // read.go
}

// Options tunes the HTTP edge; the zero value is a server with no proxy
// in front.
type Options struct {
	// TrustedProxies are the proxies whose X-Forwarded-For and
	// X-Forwarded-Proto are believed (see clientIP).
	TrustedProxies []netip.Prefix
	// BodyTimeout is how long a request's body may take to arrive after
	// its head before the answer is 408 (0: DefaultBodyTimeout; negative:
	// no limit; edge.go).
	BodyTimeout time.Duration
	// Metrics counts requests and rate limits; nil counts nothing. A
	// rate limit reports a refusal with s.rateLimited (accesslog.go).
	Metrics Metrics
	// AccessLog logs one line per request at info level (accesslog.go).
	AccessLog bool
	// Ready lists what /readyz checks (health.go).
	Ready []ReadyCheck
	// Limits are the abuse limits (limits.go); the zero value limits
	// nothing. LimitBackend keeps their buckets: nil keeps them in this
	// process, a limits.Redis shares them between instances.
	Limits       limits.Config
	LimitBackend limits.Backend
}

// Server holds what the handlers need.
type Server struct {
	accounts Accounts
	chat     Chat
	history  History
	static   fs.FS
	log      *slog.Logger
	opts     Options
	guards   guards
}

// New returns the router of the whole service: the JSON API under /api and
// the files of static at /.
func New(log *slog.Logger, accounts Accounts, c Chat, history History, static fs.FS, opts Options) *gin.Engine {
	s := &Server{accounts: accounts, chat: c, history: history, static: static, log: log, opts: opts}
	s.guards = newGuards(opts.Limits, opts.LimitBackend)
	r := gin.New()
	s.useEdge(r) // first: headers, body deadline, HEAD (edge.go)
	r.Use(s.observe, s.recover)
	r.HandleMethodNotAllowed = true
	r.NoMethod(func(c *gin.Context) {
		s.fail(c, chat.Errorf(chat.EINVALID, "method %s not allowed on %s", c.Request.Method, c.Request.URL.Path), http.StatusMethodNotAllowed)
	})
	r.NoRoute(s.serveStatic)
	r.GET("/", s.serveStatic)
	r.HEAD("/", s.serveStatic)
	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)

	r.POST("/api/login", s.sameOrigin, s.requireJSON, s.login)
	api := r.Group("/api", s.authenticate)
	api.POST("/logout", s.logout)
	api.GET("/me", s.me)
	api.GET("/stream", s.stream)
	api.GET("/rooms", s.rooms)
	api.POST("/rooms/:room/join", s.join)
	api.POST("/rooms/:room/leave", s.leave)
	api.GET("/rooms/:room/members", s.members)
	api.POST("/rooms/:room/messages", s.limitMessages, s.postRoom)
	api.GET("/rooms/:room/messages", s.roomHistory)
	api.POST("/users/:name/messages", s.limitMessages, s.postPrivate)
	api.GET("/users/:name/messages", s.privateHistory)
	api.GET("/conversations", s.conversations)
	api.POST("/rooms/:room/read", s.limitReads, s.markRoomRead)
	api.POST("/conversations/:name/read", s.limitReads, s.markConversationRead)
	return r
}

// statusOf is the one table from error codes to HTTP statuses.
func statusOf(code chat.Code) int {
	switch code {
	case chat.EINVALID:
		return http.StatusBadRequest
	case chat.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case chat.EFORBIDDEN:
		return http.StatusForbidden
	case chat.ENOTFOUND:
		return http.StatusNotFound
	case chat.ECONFLICT:
		return http.StatusConflict
	case chat.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case chat.EUNPROCESSABLE:
		return http.StatusUnprocessableEntity
	case chat.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// fail answers err as JSON {"error"}; status 0 derives it from the code.
// Internal errors are logged and shown only as "internal error".
func (s *Server) fail(c *gin.Context, err error, status int) {
	code := chat.ErrorCode(err)
	if status == 0 {
		status = statusOf(code)
	}
	if code == chat.EINTERNAL {
		s.log.Error("request failed", "method", c.Request.Method, "path", c.Request.URL.Path, "err", err)
	}
	c.AbortWithStatusJSON(status, gin.H{"error": chat.ErrorMessage(err)})
}

func (s *Server) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic in handler", "path", c.Request.URL.Path, "panic", v)
			if !c.Writer.Written() {
				c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"error": "internal error"})
			}
		}
	}()
	c.Next()
}
