package handlers

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/ssechat/ssechat/chat"
)

const maxBodyBytes = 64 << 10

// decodeJSON reads one JSON object of at most 64 KiB into v.
func decodeJSON(c *gin.Context, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, maxBodyBytes))
	err := dec.Decode(v)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("trailing data after the JSON object")
	}
	var tooLarge *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooLarge):
		return chat.Errorf(chat.ETOOLARGE, "request body must be at most %d bytes", maxBodyBytes)
	case errors.Is(err, io.EOF):
		return chat.Errorf(chat.EINVALID, "request body must be a JSON object")
	case errors.As(err, &typeErr):
		return chat.Errorf(chat.EINVALID, "field %q must be a %s", typeErr.Field, typeErr.Type)
	default:
		return chat.Errorf(chat.EINVALID, "malformed JSON: %v", err)
	}
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
