package handlers

import (
	"context"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/ssechat/ssechat/broker"
	"github.com/ssechat/ssechat/chat"
)

// Reads tells how far users have read rooms and conversations, and how
// many messages others wrote since.
type Reads interface {
	// RoomReads answers for those of rooms user is a member of now and
	// leaves the others out.
	RoomReads(ctx context.Context, user string, rooms []string) (map[string]chat.ReadState, error)
	ConversationRead(ctx context.Context, user, with string) (chat.ReadState, error)
}

// readBody reads {"id"}: an event id as a decimal string, as every id on
// the wire is.
func readBody(c *gin.Context) (int64, error) {
	var body struct {
		ID *string `json:"id"`
	}
	if err := decodeJSON(c, &body); err != nil {
		return 0, err
	}
	if body.ID == nil {
		return 0, chat.Errorf(chat.EINVALID, "field \"id\" is required")
	}
	id, ok := parseEventID(*body.ID)
	if !ok {
		return 0, chat.Errorf(chat.EINVALID, "id must be an event id: a decimal string such as \"41\"")
	}
	return id, nil
}

// parseEventID accepts decimal digits only: strconv.ParseInt alone would
// also take a sign.
func parseEventID(s string) (int64, bool) {
	for _, r := range []byte(s) {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil
}

type roomReadJSON struct {
	Room   string `json:"room"`
	Read   string `json:"read"`
	Unread int    `json:"unread"`
}

type conversationReadJSON struct {
	With   string `json:"with"`
	Read   string `json:"read"`
	Unread int    `json:"unread"`
}

// markRoomRead records how far the caller has read a room they are a
// member of, and answers where they stand now: a mark below the marker
// changes nothing and answers the marker.
func (s *Server) markRoomRead(c *gin.Context) {
	ctx, user := c.Request.Context(), currentUser(c)
	room, err := roomParam(c)
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	id, err := readBody(c)
	if err == nil {
		err = s.chat.MarkRead(ctx, chat.ReadKey{User: user, Room: room}, id)
	}
	var reads map[string]chat.ReadState
	if err == nil {
		reads, err = s.history.RoomReads(ctx, user, []string{room})
	}
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	st, ok := reads[room]
	if !ok { // left since the mark
		s.fail(c, chat.Errorf(chat.EFORBIDDEN, "you are not a member of %q", room), 0)
		return
	}
	c.JSON(http.StatusOK, roomReadJSON{Room: room, Read: chat.FormatID(st.Read), Unread: st.Unread})
}

// markConversationRead records how far the caller has read their private
// conversation with :name, and answers where they stand now.
func (s *Server) markConversationRead(c *gin.Context) {
	ctx, user := c.Request.Context(), currentUser(c)
	with, err := s.accounts.Canonical(ctx, c.Param("name"))
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	id, err := readBody(c)
	if err == nil {
		err = s.chat.MarkRead(ctx, chat.ReadKey{User: user, With: with}, id)
	}
	var st chat.ReadState
	if err == nil {
		st, err = s.history.ConversationRead(ctx, user, with)
	}
	if err != nil {
		s.fail(c, err, 0)
		return
	}
	c.JSON(http.StatusOK, conversationReadJSON{With: with, Read: chat.FormatID(st.Read), Unread: st.Unread})
}

// roomJSON is a room of GET /api/rooms: for a room the caller is a member
// of, how far they have read it and how many messages others wrote since.
type roomJSON struct {
	broker.RoomInfo
	Read   string `json:"read,omitempty"`
	Unread *int   `json:"unread,omitempty"`
}

// withReads adds the caller's read state to the rooms of a page they are
// members of: one query for the whole page.
func (s *Server) withReads(ctx context.Context, user string, page []broker.RoomInfo) ([]roomJSON, error) {
	out := make([]roomJSON, len(page))
	if len(page) == 0 {
		return out, nil
	}
	names := make([]string, len(page))
	for i, r := range page {
		names[i] = r.Room
	}
	reads, err := s.history.RoomReads(ctx, user, names)
	if err != nil {
		return nil, err
	}
	for i, r := range page {
		out[i].RoomInfo = r
		if st, ok := reads[r.Room]; ok {
			out[i].Read, out[i].Unread = chat.FormatID(st.Read), &st.Unread
		}
	}
	return out, nil
}
