package broker

import (
	"encoding/json"
	"strconv"

	"github.com/ssechat/ssechat/chat"
)

// A frame is one SSE event as it goes on the wire. It is encoded once per
// fan-out and shared by every connection it is sent to, so nothing may
// modify it after it is built.

// eventFrame encodes a logged event. Its data is json.Marshal output, which
// escapes newlines and carriage returns: user text cannot forge a frame.
func eventFrame(e chat.Event) []byte {
	data, err := e.MarshalJSON() // json.Marshal would compact what it returns
	if err != nil {
		// chat.Event holds only strings, ints and a time: it always encodes.
		panic("broker: encode event: " + err.Error())
	}
	return appendFrame(nil, chat.FormatID(e.ID), string(e.Kind), "", data)
}

// controlFrame builds an event that is not in the log: its id repeats the
// log position so that the browser's Last-Event-ID stays right.
func controlFrame(kind string, position int64, key, value string) []byte {
	id := chat.FormatID(position)
	data, _ := json.Marshal(map[string]string{"id": id, key: value})
	return appendFrame(nil, id, kind, "", data)
}

// goodbyeFrame tells a stream the server is going away and to come back in
// a second. Without a position (a malformed Last-Event-ID) it has no id
// line: an empty one would reset the client's position.
func goodbyeFrame(position int64, known bool) []byte {
	id := ""
	if known {
		id = chat.FormatID(position)
	}
	data, _ := json.Marshal(map[string]string{"id": chat.FormatID(position), "reason": "server restarting"})
	return appendFrame(nil, id, "shutdown", "1000", data)
}

// heartbeatFrame is a comment: EventSource ignores it, proxies see traffic.
func heartbeatFrame() []byte { return []byte(": keepalive\n\n") }

func appendFrame(buf []byte, id, kind, retry string, data []byte) []byte {
	if id != "" {
		buf = append(buf, "id: "...)
		buf = append(buf, id...)
		buf = append(buf, '\n')
	}
	buf = append(buf, "event: "...)
	buf = append(buf, kind...)
	if retry != "" {
		buf = append(buf, "\nretry: "...)
		buf = append(buf, retry...)
	}
	buf = append(buf, "\ndata: "...)
	buf = append(buf, data...)
	return append(buf, "\n\n"...)
}

// appendChunkSize starts an HTTP/1.1 chunk of n bytes.
func appendChunkSize(buf []byte, n int) []byte {
	buf = strconv.AppendInt(buf, int64(n), 16)
	return append(buf, "\r\n"...)
}
