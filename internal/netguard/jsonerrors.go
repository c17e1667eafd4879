package netguard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// net/http answers a request it cannot take (a request line it cannot
// parse, headers over MaxHeaderBytes, a missing Host, an unknown transfer
// coding) by itself, before any handler runs, in plain text: one Write of
// "HTTP/1.1 " + status + plainErrorHeaders + a body of one line, straight
// to the connection, which it then closes (net/http's server.go, conn.serve).
// No hook reaches those answers; the connection does. A response of ours
// never matches: net/http adds a Date header to every one.
const plainErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// writeJSONErrors writes p to w, unless p is one of net/http's own error
// answers: that one goes out with the same status and a JSON body
// {"error": reason}, as every other error of the API. It reports len(p)
// written when the rewritten answer went out whole.
func writeJSONErrors(w io.Writer, p []byte) (int, error) {
	status, reason, ok := plainError(p)
	if !ok {
		return w.Write(p)
	}
	body, _ := json.Marshal(map[string]string{"error": reason})
	answer := fmt.Sprintf("HTTP/1.1 %s\r\nContent-Type: application/json; charset=utf-8\r\n"+
		"X-Content-Type-Options: nosniff\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, len(body), body)
	if _, err := io.WriteString(w, answer); err != nil {
		return 0, err
	}
	return len(p), nil
}

// plainError recognises net/http's own error answer and returns its status
// line ("431 Request Header Fields Too Large") and its reason in the words
// of the API's errors ("request header fields too large", "bad request:
// missing required host header").
func plainError(p []byte) (status, reason string, ok bool) {
	rest, found := bytes.CutPrefix(p, []byte("HTTP/1.1 "))
	if !found {
		return "", "", false
	}
	line, body, found := bytes.Cut(rest, []byte(plainErrorHeaders))
	if !found || bytes.Contains(line, []byte("\r\n")) || bytes.ContainsAny(body, "\r\n") {
		return "", "", false
	}
	code, _, _ := strings.Cut(string(line), " ")
	n, err := strconv.Atoi(code)
	if err != nil || http.StatusText(n) == "" || len(body) == 0 {
		return "", "", false
	}
	// The body repeats the status line, or says more ("400 Bad Request:
	// missing required Host header", "Unsupported transfer encoding").
	text := strings.TrimPrefix(string(body), code+" ")
	return fmt.Sprintf("%d %s", n, http.StatusText(n)), strings.ToLower(text), true
}
