package main

import (
	"bufio"
	"bytes"
	"errors"
)

// sseEvent is one dispatched server-sent event. Its slices alias the parser's
// buffers: they are valid only until the next call to Line, which is what
// keeps the reader free of per-event allocations.
type sseEvent struct {
	Name []byte
	ID   []byte
	Data []byte
}

// sseParser turns the lines of a text/event-stream into events, following the
// WHATWG rules the browser's EventSource uses: "field: value" (one optional
// space after the colon), a line starting with ':' is a comment, a blank line
// dispatches, several data lines are joined with '\n', and the id persists
// from event to event. An id becomes the one to resume from (LastID) only
// when its event is dispatched: a connection cut between an event's id
// line and its end must resume before that event, not after it.
type sseParser struct {
	name    []byte
	data    []byte
	hasData bool
	idBuf   []byte // the id field's value, committed to lastID at dispatch
	lastID  []byte
}

// Line feeds one line without its terminator. It reports an event when the
// line is blank and data was buffered.
func (p *sseParser) Line(line []byte) (sseEvent, bool) {
	if len(line) == 0 {
		p.lastID = append(p.lastID[:0], p.idBuf...)
		if !p.hasData {
			p.name = p.name[:0]
			return sseEvent{}, false
		}
		if len(p.name) == 0 {
			p.name = append(p.name, "message"...) // the default event type
		}
		ev := sseEvent{Name: p.name, ID: p.lastID, Data: p.data}
		// Reset for the next event. The returned slices share these
		// arrays, which only the next call to Line overwrites.
		p.name = p.name[:0]
		p.data = p.data[:0]
		p.hasData = false
		return ev, true
	}
	if line[0] == ':' {
		return sseEvent{}, false // comment: heartbeats
	}
	field, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		field, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(field) { // no allocation: the compiler special-cases this
	case "event":
		p.name = append(p.name[:0], value...)
	case "data":
		if p.hasData {
			p.data = append(p.data, '\n')
		}
		p.data = append(p.data, value...)
		p.hasData = true
	case "id":
		if bytes.IndexByte(value, 0) < 0 { // the spec ignores ids with NUL
			p.idBuf = append(p.idBuf[:0], value...)
		}
	}
	return sseEvent{}, false
}

// Restart drops a partly read event, keeping the last id: what a new
// connection of the same stream starts from.
func (p *sseParser) Restart() {
	p.name, p.data, p.hasData = p.name[:0], p.data[:0], false
	p.idBuf = append(p.idBuf[:0], p.lastID...)
}

// LastID is the id the stream would resume from (Last-Event-ID).
func (p *sseParser) LastID() string { return string(p.lastID) }

// readLine reads one line without its "\n" or "\r\n". It uses ReadSlice so
// that a line that fits the reader's buffer costs no copy; a longer one is
// assembled in scratch.
func readLine(br *bufio.Reader, scratch *[]byte) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		*scratch = append((*scratch)[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = br.ReadSlice('\n')
			*scratch = append(*scratch, line...)
		}
		line = *scratch
	}
	if err != nil {
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}
