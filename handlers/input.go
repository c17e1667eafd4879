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

// limitParam reads ?limit=, an integer from 1 to chat.MaxLimit, or def
// when absent.
func limitParam(c *gin.Context, def int) (int, error) {
	v, ok := c.GetQuery("limit")
	if !ok {
		return def, nil
	}
	limit, err := strconv.Atoi(v)
	if err != nil || limit < 1 || limit > chat.MaxLimit {
		return 0, chat.Errorf(chat.EINVALID, "limit must be an integer from 1 to %d", chat.MaxLimit)
	}
	return limit, nil
}

// cursorPage reads ?limit= (default def) and ?after=, a cursor that valid
// must accept; what names it is said in the error.
func cursorPage(c *gin.Context, def int, valid func(string) bool, what string) (after string, limit int, err error) {
	if limit, err = limitParam(c, def); err != nil {
		return "", 0, err
	}
	after = c.Query("after")
	if after != "" && !valid(after) {
		return "", 0, chat.Errorf(chat.EINVALID, "after must be %s", what)
	}
	return after, limit, nil
}

// roomPageParams reads ?limit= (1-500, default 100) and ?after= (a room
// name; the page starts after it).
func roomPageParams(c *gin.Context) (after string, limit int, err error) {
	return cursorPage(c, chat.DefaultRoomsLimit, chat.ValidRoom, "a room name")
}

// memberPageParams reads ?limit= (1-500, default 500) and ?after= (a
// username, the cursor) of a member list. The default keeps a small room's
// list whole, in one answer, as before paging.
func memberPageParams(c *gin.Context) (after string, limit int, err error) {
	return cursorPage(c, chat.MaxLimit, chat.ValidUsername, "a username")
}

// pageParams reads ?limit= (1-500, default 50) and ?before= (an event id).
func pageParams(c *gin.Context) (before int64, limit int, err error) {
	if limit, err = limitParam(c, chat.DefaultLimit); err != nil {
		return 0, 0, err
	}
	if v, ok := c.GetQuery("before"); ok {
		before, err = strconv.ParseInt(v, 10, 64)
		if err != nil || before < 1 {
			return 0, 0, chat.Errorf(chat.EINVALID, "before must be a positive event id")
		}
	}
	return before, limit, nil
}
