package broker

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// sink is where a connection's frames go. Only the connection's writer
// calls send and end; abort may be called from anywhere.
type sink interface {
	// start sends the response head, so the client knows at once that its
	// stream is open, however long its backlog takes to read.
	start() error
	// send writes frames and pushes them to the client, giving up when the
	// write timeout passes: a peer that stopped reading is cut off.
	send(frames [][]byte) error
	// end finishes the response after the last frame.
	end()
	// abort makes a blocked send return now and every later one fail.
	abort()
	// close releases the connection once its writer has stopped.
	close()
}

// takeOver takes an HTTP/1 connection away from net/http, so that the
// stream's writer owns the socket outright. The profile of the earlier
// design, where r3labs/sse served every stream through net/http, showed
// what that costs per connection: four goroutines (the server's, its
// background reader, the library's handler loop and its stream loop,
// ≈ 26 KiB of stacks of 52 KiB RSS per idle stream), two goroutine
// hand-offs and a formatted write and flush — one write system call —
// per event (≈ 40 % of CPU at 10,000 streams × 20 msg/s). A taken-over
// connection costs one writer and one reader goroutine (12 KiB RSS per
// idle stream, measured) and writes everything queued for it in one
// system call.
//
// HTTP/2 streams cannot be taken over (and gin would panic trying): they
// are served through the ResponseWriter instead, with the same writer.
func takeOver(w http.ResponseWriter, r *http.Request, timeout time.Duration) (*takenConn, error) {
	if r.ProtoMajor != 1 {
		return nil, http.ErrNotSupported
	}
	nc, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, err
	}
	// Whatever deadlines the server set for reading the request must not
	// end the stream.
	_ = nc.SetDeadline(time.Time{})

	var head bytes.Buffer
	chunked := r.ProtoAtLeast(1, 1)
	head.WriteString("HTTP/1.1 200 OK\r\n")
	h := w.Header().Clone()
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	// The connection ends with the stream: nothing else may be sent on it.
	h.Set("Connection", "close")
	if chunked {
		h.Set("Transfer-Encoding", "chunked")
	} // else an HTTP/1.0 client reads the stream until the connection closes.
	_ = h.Write(&head)
	head.WriteString("\r\n")
	return &takenConn{conn: nc, timeout: timeout, chunked: chunked, head: head.Bytes(), crlf: [2]byte{'\r', '\n'}}, nil
}

// takenConn writes frames straight to a taken-over connection, as HTTP/1.1
// chunks (one per system call) or, for HTTP/1.0, as they are.
type takenConn struct {
	conn    net.Conn
	timeout time.Duration
	chunked bool
	head    []byte // the response head
	iov     net.Buffers
	size    []byte  // the current chunk's size line
	crlf    [2]byte // ends every chunk
	// deadline is the write deadline last set. Setting one costs a tenth
	// of a write (it re-files a runtime timer), so it is moved only once
	// it is less than half the timeout away: a write that stalls is cut
	// off after between timeout/2 and timeout.
	deadline time.Time
}

// framesPerWrite bounds one writev: the kernel takes at most 1,024
// pieces, and the runtime keeps each socket's largest vector for reuse.
const framesPerWrite = 64

func (t *takenConn) start() error {
	t.deadline = time.Now().Add(t.timeout)
	if err := t.conn.SetWriteDeadline(t.deadline); err != nil {
		return err
	}
	_, err := t.conn.Write(t.head)
	t.head = nil
	return err
}

func (t *takenConn) send(frames [][]byte) error {
	if now := time.Now(); t.deadline.Sub(now) < t.timeout/2 {
		t.deadline = now.Add(t.timeout)
		if err := t.conn.SetWriteDeadline(t.deadline); err != nil {
			return err
		}
	}
	for len(frames) > 0 {
		n := min(len(frames), framesPerWrite)
		t.iov = t.iov[:0]
		if t.chunked {
			size := 0
			for _, f := range frames[:n] {
				size += len(f)
			}
			t.size = appendChunkSize(t.size[:0], size)
			t.iov = append(t.iov, t.size)
		}
		t.iov = append(t.iov, frames[:n]...)
		if t.chunked {
			t.iov = append(t.iov, t.crlf[:])
		}
		// WriteTo consumes its receiver: write from a copy of the header.
		iov := t.iov
		_, err := iov.WriteTo(t.conn)
		clear(t.iov[:cap(t.iov)])
		if err != nil {
			return err
		}
		frames = frames[n:]
	}
	return nil
}

func (t *takenConn) end() {
	if t.chunked {
		_ = t.conn.SetWriteDeadline(time.Now().Add(t.timeout))
		_, _ = t.conn.Write([]byte("0\r\n\r\n"))
	}
}

// abort closes the socket: a write blocked on a peer that stopped reading
// returns at once, and so does the reader.
func (t *takenConn) abort() { _ = t.conn.Close() }
func (t *takenConn) close() { _ = t.conn.Close() }

// hangUps waits until the client closes the connection (or it is closed
// under it) and then calls done. A stream's client sends nothing after its
// request, so anything it does send is read and dropped.
func (t *takenConn) hangUps(done func()) {
	var buf [64]byte
	for {
		if _, err := t.conn.Read(buf[:]); err != nil {
			done()
			return
		}
	}
}

// responseSink writes frames through net/http, for streams that cannot be
// taken over.
type responseSink struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	flush   func() error
	timeout time.Duration
	aborted atomic.Bool
}

var errAborted = errors.New("stream aborted")

func newResponseSink(w http.ResponseWriter, timeout time.Duration) *responseSink {
	return &responseSink{w: w, rc: http.NewResponseController(w), flush: flushWithError(w), timeout: timeout}
}

func (s *responseSink) start() error {
	s.w.WriteHeader(http.StatusOK)
	// Through every wrapper: gin writes the status line only in its own
	// Flush or Write.
	return s.rc.Flush()
}

func (s *responseSink) send(frames [][]byte) error {
	// Not every ResponseWriter supports deadlines (a test's recorder);
	// then the stream simply has none.
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.timeout))
	if s.aborted.Load() {
		// abort's deadline may have been overwritten just above.
		return errAborted
	}
	for _, f := range frames {
		if _, err := s.w.Write(f); err != nil {
			return err
		}
	}
	return s.flush()
}

func (s *responseSink) end() {}

func (s *responseSink) abort() {
	s.aborted.Store(true)
	_ = s.rc.SetWriteDeadline(time.Now())
}

func (s *responseSink) close() {}

// flushWithError finds the innermost writer's FlushError: gin's Flush
// swallows the error, and a timed-out flush is how a stalled reader is
// usually noticed. Frames are written through every wrapper first, so gin
// has sent the status line by then.
func flushWithError(w http.ResponseWriter) func() error {
	for inner := w; ; {
		if f, ok := inner.(interface{ FlushError() error }); ok {
			return f.FlushError
		}
		u, ok := inner.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return http.NewResponseController(w).Flush
		}
		inner = u.Unwrap()
	}
}
