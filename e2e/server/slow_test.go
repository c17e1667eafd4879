//go:build unix

package server_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ssechat/ssechat/broker"
	"github.com/ssechat/ssechat/internal/chattest"
)

// One client stops reading; the others keep receiving every message on
// time, the stalled connection is cut off and counted, and when its user
// comes back with Last-Event-ID it catches up exactly.
func TestSlowConsumerIsCutOffAndCatchesUp(t *testing.T) {
	const writeTimeout = time.Second
	srv := chattest.Start(t, chattest.WithBroker(broker.Config{StreamBuffer: 8, WriteTimeout: writeTimeout}))
	sam, alice, bob, pat := srv.Login(t, "sam"), srv.Login(t, "alice"), srv.Login(t, "bob"), srv.Login(t, "pat")
	for _, c := range []*chattest.Client{sam, alice, bob, pat} {
		c.Join("lobby")
	}
	fast := []*chattest.Stream{alice.Stream(""), bob.Stream("")}
	for _, s := range fast {
		s.Ready()
	}
	stalled := openStalled(t, srv.URL, sam.Token)
	waitPresence(fast[0], "sam", "online")

	// Big messages fill the kernel buffers between the server and sam
	// quickly; then his connection's queue, then he is cut off.
	filler := strings.Repeat("x", 3900)
	var acked []string
	got := make([][]string, len(fast))
	var worst time.Duration
	extra := -1 // messages still to send once sam was cut off
	for i := 0; extra != 0; i++ {
		if i == 2000 {
			t.Fatalf("sam was not cut off after %d messages of 4 KB", i)
		}
		e := pat.Say("lobby", fmt.Sprintf("%d %s", i, filler))
		sent := time.Now()
		acked = append(acked, e.ID)
		for k, s := range fast {
			frames := s.Until(func(f chattest.Frame) bool { return f.ID == e.ID })
			worst = max(worst, time.Since(sent))
			got[k] = append(got[k], messageIDs(frames)...)
		}
		switch {
		case extra > 0:
			extra--
		case extra < 0 && srv.App.Broker().Kicked() > 0:
			extra = 10
		}
	}
	t.Logf("sam cut off after %d messages; slowest delivery to the others %v", len(acked)-10, worst)
	for k := range fast {
		if !slices.Equal(got[k], acked) {
			t.Fatalf("reader %d got %d messages, %d were sent", k, len(got[k]), len(acked))
		}
	}
	// Had sam's stall held up the fan-out, someone would have waited for
	// his write deadline.
	within(t, "the slowest delivery to a reading client", worst, writeTimeout/2)
	if k := srv.App.Broker().Kicked(); k != 1 {
		t.Fatalf("%d connections cut off, want exactly sam's", k)
	}

	// What reached sam before the cut, then what a resume adds.
	received := stalled.drain(t)
	last := received[len(received)-1].ID
	if received[0].Kind != "ready" {
		t.Fatalf("sam's stream began with %s", received[0].Kind)
	}
	resumed := sam.Stream(last)
	frames := resumed.Until(func(f chattest.Frame) bool { return f.ID == acked[len(acked)-1] })
	if frames[0].Kind == "reset" {
		t.Fatalf("sam's resume from %s reset: %s", last, frames[0].Data)
	}
	checkIncreasing(t, num(t, last), frames)
	all := append(messageIDs(received), messageIDs(frames)...)
	if !slices.Equal(all, acked) {
		t.Fatalf("sam read %d messages before the cut and %d after resuming from %s; %d were sent",
			len(messageIDs(received)), len(messageIDs(frames)), last, len(acked))
	}
}

// stalledStream is a stream whose client sent its request and then stopped
// reading: a raw connection with a tiny receive buffer.
type stalledStream struct {
	conn net.Conn
	req  *http.Request
}

func openStalled(t *testing.T, base, token string) *stalledStream {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	d := net.Dialer{Timeout: chattest.Timeout, Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			// Set before connecting, so the advertised window stays small.
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	req, err := http.NewRequest("GET", base+"/api/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	return &stalledStream{conn: conn, req: req}
}

// drain reads everything the server wrote before it closed the connection
// and returns the complete frames; a frame cut off mid-way is dropped, as
// EventSource drops it.
func (s *stalledStream) drain(t *testing.T) []chattest.Frame {
	t.Helper()
	s.conn.SetReadDeadline(time.Now().Add(chattest.Timeout))
	resp, err := http.ReadResponse(bufio.NewReader(s.conn), s.req)
	if err != nil {
		t.Fatalf("read the stalled stream's response: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stalled stream: status %d", resp.StatusCode)
	}
	// The body ends with an error (the server cut the connection) or, if
	// the server finished the response cleanly, with EOF.
	body, err := io.ReadAll(resp.Body)
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server never closed the stalled stream: %v", err)
	}
	frames := parseFrames(string(body))
	if len(frames) == 0 {
		t.Fatal("the stalled stream carried no complete event")
	}
	return frames
}

// parseFrames parses complete SSE events (each ended by a blank line).
func parseFrames(body string) []chattest.Frame {
	var out []chattest.Frame
	for {
		block, rest, ok := strings.Cut(body, "\n\n")
		if !ok {
			return out
		}
		body = rest
		var f chattest.Frame
		var data []string
		for line := range strings.SplitSeq(block, "\n") {
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				f.ID, f.HasID = value, true
			case "event":
				f.Kind = value
			case "data":
				data = append(data, value)
			}
		}
		if f.Kind == "" && len(data) == 0 {
			continue // a comment (heartbeat)
		}
		f.Data = strings.Join(data, "\n")
		out = append(out, f)
	}
}
