package handlers

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/ssechat/ssechat/broker"
	"github.com/ssechat/ssechat/chat"
)

// stream serves the caller's own SSE stream; the stream is chosen by the
// authenticated identity alone. The resume point comes from the
// Last-Event-ID header or, for scripts and first page loads, the
// last_event_id query parameter.
func (s *Server) stream(c *gin.Context) {
	resume := parseResume(c.GetHeader("Last-Event-ID"))
	if !resume.Given && !resume.Malformed {
		resume = parseResume(c.Query("last_event_id"))
	}
	if !s.admitStream(c) {
		return
	}
	s.chat.ServeStream(c.Request.Context(), c.Writer, c.Request, currentUser(c), c.GetString(sessionKey), resume)
}

func parseResume(v string) broker.Resume {
	if v == "" {
		return broker.Resume{}
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id < 0 {
		return broker.Resume{Malformed: true}
	}
	return broker.Resume{After: id, Given: true}
}

// rooms lists the rooms by name a page at a time: up to ?limit= rooms
// after the ?after= cursor (a room name), and next, the cursor of the
// following page ("" after the last one). The rooms the caller is a
// member of carry their read state (read.go).
func (s *Server) rooms(c *gin.Context) {
	after, limit, err := roomPageParams(c)
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	all := s.chat.Rooms(c.Request.Context()) // sorted by name
	start, found := slices.BinarySearchFunc(all, after, func(r broker.RoomInfo, name string) int {
		return strings.Compare(r.Room, name)
	})
	if found {
		start++
	}
	end := min(start+limit, len(all))
	next := ""
	if end < len(all) {
		next = all[end-1].Room
	}
	page, err := s.withReads(c.Request.Context(), currentUser(c), all[start:end])
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	c.JSON(http.StatusOK, gin.H{"rooms": page, "next": next})
}

func (s *Server) join(c *gin.Context) {
	room, err := roomParam(c)
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	if !s.admitRoom(c, room) {
		return
	}
	state, err := s.chat.Join(c.Request.Context(), currentUser(c), room)
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	c.JSON(http.StatusOK, state)
}

func (s *Server) leave(c *gin.Context) {
	room, err := roomParam(c)
	if err == nil {
		err = s.chat.Leave(c.Request.Context(), currentUser(c), room)
	}
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	c.Status(http.StatusNoContent)
}

func (s *Server) members(c *gin.Context) {
	room, err := roomParam(c)
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	after, limit, err := memberPageParams(c)
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	members, next, err := s.chat.Members(c.Request.Context(), room, after, limit)
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	c.JSON(http.StatusOK, gin.H{"room": room, "members": members, "next": next})
}

// postRoom publishes a room message, or a private message when the text
// reads "@name rest", as in the original Socket.IO chat.
func (s *Server) postRoom(c *gin.Context) {
	user := currentUser(c)
	room, err := roomParam(c)
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	key, err := idempotencyKey(c)
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	text, err := textBody(c)
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	once := onceFor(user, key, "room", room, text)
	var event chat.Event
	var repeat bool
	if to, rest, ok := chat.ParseMention(text); ok {
		// A room message is checked as it is appended; this one only
		// goes through the room, so check here.
		err = s.chat.CheckMember(c.Request.Context(), user, room)
		if err == nil {
			event, repeat, err = s.mention(c, user, room, to, rest, once)
		}
		if err != nil && once.Given() {
			// Refused now, but maybe posted before: the retry of a
			// mention whose answer was lost, its writer or its
			// addressee having left the room since, gets the original.
			if e, found, rerr := s.chat.Repeat(c.Request.Context(), user, once); rerr != nil || found {
				event, repeat, err = e, found, rerr
			}
		}
	} else {
		event, repeat, err = s.chat.PostRoomOnce(c.Request.Context(), user, room, text, once)
	}
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	s.posted(c, event, repeat)
}

// mention sends the private part of "@name text" written in room to name,
// who must be a member of room: a mention never leaves the room it was
// written in. Anyone else is 404 with nothing sent, the same whether the
// name is unknown or just not in the room. POST /api/users/{name}/messages
// reaches anyone.
func (s *Server) mention(c *gin.Context, from, room, to, text string, once chat.Once) (chat.Event, bool, error) {
	if err := chat.CheckText(text); err != nil {
		return chat.Event{}, false, err
	}
	ctx := c.Request.Context()
	canonical, err := s.accounts.Canonical(ctx, to)
	if err == nil {
		err = s.chat.CheckMember(ctx, canonical, room)
	}
	switch chat.ErrorCode(err) {
	case "":
		return s.chat.PostPrivateOnce(ctx, from, canonical, text, once)
	case chat.ENOTFOUND, chat.EFORBIDDEN:
		return chat.Event{}, false, chat.Errorf(chat.ENOTFOUND, "%q is not a member of room %q: nothing was sent", to, room)
	}
	return chat.Event{}, false, err
}

func (s *Server) postPrivate(c *gin.Context) {
	key, err := idempotencyKey(c)
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	text, err := textBody(c)
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	event, repeat, err := s.sendPrivate(c, currentUser(c), c.Param("name"), text, key)
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	s.posted(c, event, repeat)
}

func (s *Server) sendPrivate(c *gin.Context, from, to, text, key string) (chat.Event, bool, error) {
	if err := chat.CheckText(text); err != nil {
		return chat.Event{}, false, err
	}
	to, err := s.accounts.Canonical(c.Request.Context(), to)
	if err != nil {
		return chat.Event{}, false, err
	}
	return s.chat.PostPrivateOnce(c.Request.Context(), from, to, text, onceFor(from, key, "user", to, text))
}

func (s *Server) roomHistory(c *gin.Context) {
	room, err := roomParam(c)
	if err == nil {
		err = s.chat.CheckMember(c.Request.Context(), currentUser(c), room)
	}
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	before, limit, err := pageParams(c)
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	messages, err := s.history.RoomHistory(c.Request.Context(), room, before, limit)
	s.page(c, messages, err)
}

func (s *Server) privateHistory(c *gin.Context) {
	other, err := s.accounts.Canonical(c.Request.Context(), c.Param("name"))
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	before, limit, err := pageParams(c)
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	messages, err := s.history.PrivateHistory(c.Request.Context(), currentUser(c), other, before, limit)
	s.page(c, messages, err)
}

func (s *Server) page(c *gin.Context, messages []chat.Event, err error) {
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	if messages == nil {
		messages = []chat.Event{}
	}
	c.JSON(http.StatusOK, gin.H{"messages": messages})
}

type conversationJSON struct {
	User   string `json:"user"`
	LastID string `json:"last_id"`
	Read   string `json:"read"`
	Unread int    `json:"unread"`
}

func (s *Server) conversations(c *gin.Context) {
	convs, err := s.history.Conversations(c.Request.Context(), currentUser(c))
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	out := make([]conversationJSON, len(convs))
	for i, conv := range convs {
		out[i] = conversationJSON{User: conv.User, LastID: chat.FormatID(conv.LastID),
			Read: chat.FormatID(conv.Read), Unread: conv.Unread}
	}
	c.JSON(http.StatusOK, gin.H{"conversations": out})
}

// created answers with the event as streams show it. c.JSON would run the
// bytes MarshalJSON makes through encoding/json's validation and
// compaction again: 4 % of the write path's CPU.
func (s *Server) created(c *gin.Context, event chat.Event) {
	data, err := event.MarshalJSON()
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	c.Data(http.StatusCreated, "application/json; charset=utf-8", data)
}
