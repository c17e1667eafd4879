package broker_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssechat/ssechat/broker"
	"github.com/ssechat/ssechat/chat"
	"github.com/ssechat/ssechat/cluster"
	"github.com/ssechat/ssechat/store/sqlite"
)

// countingConn stands in for a client's connection: the broker takes it
// over as it would a real one, and it counts the event frames written to
// it, so a benchmark measures the broker, not the kernel.
type countingConn struct {
	header http.Header
	mu     sync.Mutex
	tail   []byte
	frames atomic.Int64
	// writes counts the broker's writes. net.Buffers hands a conn that is
	// not a socket one buffer at a time; each write's last is the CRLF
	// that ends its HTTP chunk.
	writes atomic.Int64
	wrote  chan struct{}
	closed chan struct{}
	once   sync.Once
}

func newCountingConn() *countingConn {
	return &countingConn{header: http.Header{}, wrote: make(chan struct{}, 1), closed: make(chan struct{})}
}

func (w *countingConn) Header() http.Header { return w.header }
func (w *countingConn) WriteHeader(int)     {}
func (w *countingConn) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return w, nil, nil
}

func (w *countingConn) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if string(p) == "\r\n" {
		w.writes.Add(1)
	}
	// An event ends with a blank line; frames may arrive in pieces.
	data := append(w.tail, p...)
	n := int64(bytes.Count(data, []byte("\n\n")))
	if i := bytes.LastIndex(data, []byte("\n\n")); i >= 0 {
		data = data[i+2:]
	}
	w.tail = append(w.tail[:0], data...)
	if n > 0 {
		w.frames.Add(n)
		select {
		case w.wrote <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// Read blocks like a client that sends nothing after its request.
func (w *countingConn) Read([]byte) (int, error) {
	<-w.closed
	return 0, net.ErrClosed
}

func (w *countingConn) Close() error {
	w.once.Do(func() { close(w.closed) })
	return nil
}

func (w *countingConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (w *countingConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (w *countingConn) SetDeadline(time.Time) error      { return nil }
func (w *countingConn) SetReadDeadline(time.Time) error  { return nil }
func (w *countingConn) SetWriteDeadline(time.Time) error { return nil }

func newBroker(b testing.TB, cfg broker.Config) (*broker.Broker, func()) {
	b.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	br, err := broker.New(ctx, store, cluster.NewLocal(), slog.New(slog.NewTextHandler(io.Discard, nil)), cfg)
	if err != nil {
		b.Fatal(err)
	}
	return br, func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = br.Shutdown(sctx)
		br.Close()
		store.Close()
	}
}

// BenchmarkFanout measures one room message delivered to every connection
// of a room: the time per message, from POST to the last connection's
// write, with commits, encoding and each connection's queue and writer.
func BenchmarkFanout(b *testing.B) {
	for _, conns := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			br, closeBroker := newBroker(b, broker.Config{StreamBuffer: 1024})
			defer closeBroker()
			ctx := context.Background()
			writers := connectMembers(ctx, b, br, conns)
			base := make([]int64, conns)
			for i, w := range writers {
				base[i] = w.frames.Load()
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := br.PostRoom(ctx, "u0", "room", "hello, everyone"); err != nil {
					b.Fatal(err)
				}
			}
			for i, w := range writers {
				for w.frames.Load() < base[i]+int64(b.N) {
					select {
					case <-w.wrote:
					case <-time.After(30 * time.Second):
						b.Fatalf("connection %d got %d of %d", i, w.frames.Load()-base[i], b.N)
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*conns)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}

// BenchmarkWritePath is the write path in-process: 50 concurrent
// posters in a 100-member room whose members all hold a connection; every
// message is committed durably before PostRoom returns.
func BenchmarkWritePath(b *testing.B) {
	const members, posters = 100, 50
	br, closeBroker := newBroker(b, broker.Config{StreamBuffer: 4096})
	defer closeBroker()
	ctx := context.Background()
	connectMembers(ctx, b, br, members)
	var next atomic.Int64
	b.ResetTimer()
	var posting sync.WaitGroup
	for p := 0; p < posters; p++ {
		posting.Add(1)
		go func() {
			defer posting.Done()
			for next.Add(1) <= int64(b.N) {
				if _, err := br.PostRoom(ctx, fmt.Sprintf("u%d", p), "room", "hello, everyone"); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	posting.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "acked/s")
}

// connectMembers joins users u0…u(n-1) to "room", opens a stream for each
// until ctx ends, and returns once every stream has written its ready.
func connectMembers(ctx context.Context, b testing.TB, br *broker.Broker, n int) []*countingConn {
	b.Helper()
	writers := make([]*countingConn, n)
	for i := range writers {
		user := fmt.Sprintf("u%d", i)
		if _, err := br.Join(ctx, user, "room"); err != nil {
			b.Fatal(err)
		}
		w := newCountingConn()
		writers[i] = w
		// The broker takes the connection over and returns; closing the
		// broker ends the stream.
		br.ServeStream(ctx, w, httptest.NewRequest("GET", "/api/stream", nil), user, "", broker.Resume{})
	}
	waitFrames(b, writers, 1)
	return writers
}

func waitFrames(b testing.TB, writers []*countingConn, n int64) {
	b.Helper()
	for i, w := range writers {
		for w.frames.Load() < n {
			select {
			case <-w.wrote:
			case <-time.After(30 * time.Second):
				b.Fatalf("connection %d never became ready", i)
			}
		}
	}
}

// BenchmarkEncode is the per-message encoding, done once per fan-out.
func BenchmarkEncode(b *testing.B) {
	e := chat.Event{ID: 123456789, Kind: chat.KindMessage, Room: "lobby", From: "alice",
		Text: "a fairly ordinary chat message with \"quotes\" and a newline\n", TS: time.Now()}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := e.MarshalJSON(); err != nil {
			b.Fatal(err)
		}
	}
}
