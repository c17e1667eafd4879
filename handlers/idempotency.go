package handlers

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/ssechat/ssechat/chat"
)

// idempotencyKey reads the optional Idempotency-Key header of a message
// POST: "" if there is none.
func idempotencyKey(c *gin.Context) (string, error) {
	values := c.Request.Header.Values(chat.IdempotencyHeader)
	switch len(values) {
	case 0:
		return "", nil
	case 1:
		return values[0], chat.CheckIdempotencyKey(values[0])
	}
	return "", chat.Errorf(chat.EINVALID, "%s given %d times; give it once", chat.IdempotencyHeader, len(values))
}

// onceFor is user's key for the request that parts describe: a repeat
// must ask for the same (the route, its target, the text as sent).
func onceFor(user, key string, parts ...string) chat.Once {
	if key == "" {
		return chat.Once{}
	}
	return chat.NewOnce(user, key, parts...)
}

// posted answers a message POST: 201 with a new event, 200 with the one
// an earlier POST with the same Idempotency-Key posted. That repeat sent
// nothing, so it is not charged against the message limit.
func (s *Server) posted(c *gin.Context, event chat.Event, repeat bool) {
	if !repeat {
		s.created(c, event)
		return
	}
	if l := s.guards.messages; l != nil {
		l.Refund(c.Request.Context(), currentUser(c))
	}
	// Repeats are rare: the second validation pass that created avoids
	// costs nothing worth saving here, and the bytes are the same.
	c.JSON(http.StatusOK, event)
}
