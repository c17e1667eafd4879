package broker_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ssechat/ssechat/broker"
	"github.com/ssechat/ssechat/chat"
	"github.com/ssechat/ssechat/store/sqlite"
)

// countingWriter stands in for a connection: it counts the event frames
// written to it, so a benchmark measures the broker and the library, not
// the kernel.
type countingWriter struct {
	header http.Header
	mu     sync.Mutex
	tail   []byte
	frames atomic.Int64
	wrote  chan struct{}
}

func (w *countingWriter) Header() http.Header { return w.header }
func (w *countingWriter) WriteHeader(int)     {}
func (w *countingWriter) Flush()              {}
func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
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

func newBroker(b *testing.B, cfg broker.Config) (*broker.Broker, func()) {
	b.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	br, err := broker.New(ctx, store, slog.New(slog.NewTextHandler(io.Discard, nil)), cfg)
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
// write, with commits, encoding and the library's per-connection work.
func BenchmarkFanout(b *testing.B) {
	for _, conns := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			br, closeBroker := newBroker(b, broker.Config{StreamBuffer: 1024})
			defer closeBroker()
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			writers := connectMembers(ctx, b, br, conns, &wg)
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
			cancel()
			wg.Wait()
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
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	connectMembers(ctx, b, br, members, &wg)
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
	cancel()
	wg.Wait()
}

// connectMembers joins users u0…u(n-1) to "room", opens a stream for each
// until ctx ends, and returns once every stream has written its ready.
func connectMembers(ctx context.Context, b *testing.B, br *broker.Broker, n int, wg *sync.WaitGroup) []*countingWriter {
	b.Helper()
	writers := make([]*countingWriter, n)
	for i := range writers {
		user := fmt.Sprintf("u%d", i)
		if _, err := br.Join(ctx, user, "room"); err != nil {
			b.Fatal(err)
		}
		w := &countingWriter{header: http.Header{}, wrote: make(chan struct{}, 1)}
		writers[i] = w
		req := httptest.NewRequest("GET", "/api/stream", nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			br.ServeStream(ctx, w, req, user, broker.Resume{})
		}()
	}
	waitFrames(b, writers, 1)
	return writers
}

func waitFrames(b *testing.B, writers []*countingWriter, n int64) {
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
