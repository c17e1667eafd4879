package chat

import (
	"errors"
	"fmt"
)

// Code classifies an error for the client; the HTTP edge maps each code to a
// status in one table.
type Code string

// Error codes.
const (
	ECONFLICT     Code = "conflict"
	EFORBIDDEN    Code = "forbidden"
	EINTERNAL     Code = "internal"
	EINVALID      Code = "invalid"
	ENOTFOUND     Code = "not_found"
	ETOOLARGE     Code = "too_large"
	EUNAUTHORIZED Code = "unauthorized"
	EUNAVAILABLE  Code = "unavailable"
	// EUNPROCESSABLE is a well-formed request that contradicts an earlier
	// one: an Idempotency-Key used again for another message.
	EUNPROCESSABLE Code = "unprocessable"
)

// Error is an error whose message is safe to show to the client. Err, if
// set, is the cause: for logs and errors.Is, never shown to the client.
type Error struct {
	Code    Code
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return string(e.Code) + ": " + e.Message + ": " + e.Err.Error()
	}
	return string(e.Code) + ": " + e.Message
}

// Unwrap returns the cause, so that errors.Is sees through to it.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a formatted, client-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for
// any other error and "" for nil.
func ErrorCode(err error) Code {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EINTERNAL
	}
}

// ErrorMessage returns the client-safe message of err; internal errors get a
// generic text so that no detail leaks.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}
