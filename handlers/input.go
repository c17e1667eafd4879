package handlers

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/ssechat/ssechat/chat"
)

const maxBodyBytes = 64 << 10

// decodeJSON reads one JSON object of at most 64 KiB into v, strictly
// (see parseJSON): valid UTF-8 and Unicode, no key twice, no unknown field.
func decodeJSON(c *gin.Context, v any) error {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, maxBodyBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return chat.Errorf(chat.ETOOLARGE, "request body must be at most %d bytes", maxBodyBytes)
	case err != nil:
		return chat.Errorf(chat.EINVALID, "could not read the request body")
	}
	return parseJSON(body, v)
}

// roomParam returns the :room path parameter if it is a valid room name.
func roomParam(c *gin.Context) (string, error) {
	room := c.Param("room")
	if !chat.ValidRoom(room) {
		return "", chat.Errorf(chat.EINVALID, "room names are 1-%d of A-Z a-z 0-9 _ - . (not . or ..)", chat.MaxRoomLen)
	}
	return room, nil
}

// textBody reads {"text"} and validates the text.
func textBody(c *gin.Context) (string, error) {
	var body struct {
		Text *string `json:"text"`
	}
	if err := decodeJSON(c, &body); err != nil {
		return "", err
	}
	if body.Text == nil {
		return "", chat.Errorf(chat.EINVALID, "field \"text\" is required")
	}
	if err := chat.CheckText(*body.Text); err != nil {
		return "", err
	}
	return *body.Text, nil
}

// roomPageParams reads ?limit= (1-500, default 100) and ?after= (a room
// name; the page starts after it).
func roomPageParams(c *gin.Context) (after string, limit int, err error) {
	limit = chat.DefaultRoomsLimit
	if v, ok := c.GetQuery("limit"); ok {
		limit, err = strconv.Atoi(v)
		if err != nil || limit < 1 || limit > chat.MaxLimit {
			return "", 0, chat.Errorf(chat.EINVALID, "limit must be an integer from 1 to %d", chat.MaxLimit)
		}
	}
	after = c.Query("after")
	if after != "" && !chat.ValidRoom(after) {
		return "", 0, chat.Errorf(chat.EINVALID, "after must be a room name")
	}
	return after, limit, nil
}

// memberPageParams reads ?limit= (1-500, default 500) and ?after= (a
// username, the cursor) of a member list. The default keeps a small room's
// list whole, in one answer, as before paging.
func memberPageParams(c *gin.Context) (after string, limit int, err error) {
	limit = chat.MaxLimit
	if v, ok := c.GetQuery("limit"); ok {
		limit, err = strconv.Atoi(v)
		if err != nil || limit < 1 || limit > chat.MaxLimit {
			return "", 0, chat.Errorf(chat.EINVALID, "limit must be an integer from 1 to %d", chat.MaxLimit)
		}
	}
	after = c.Query("after")
	if after != "" && !chat.ValidUsername(after) {
		return "", 0, chat.Errorf(chat.EINVALID, "after must be a username")
	}
	return after, limit, nil
}

// pageParams reads ?limit= (1-500, default 50) and ?before= (an event id).
func pageParams(c *gin.Context) (before int64, limit int, err error) {
	limit = chat.DefaultLimit
	if v, ok := c.GetQuery("limit"); ok {
		limit, err = strconv.Atoi(v)
		if err != nil || limit < 1 || limit > chat.MaxLimit {
			return 0, 0, chat.Errorf(chat.EINVALID, "limit must be an integer from 1 to %d", chat.MaxLimit)
		}
	}
	if v, ok := c.GetQuery("before"); ok {
		before, err = strconv.ParseInt(v, 10, 64)
		if err != nil || before < 1 {
			return 0, 0, chat.Errorf(chat.EINVALID, "before must be a positive event id")
		}
	}
	return before, limit, nil
}
