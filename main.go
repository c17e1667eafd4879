// Command ssechat is a chat server that speaks Server-Sent Events.
package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"

	"github.com/ssechat/ssechat/app"
	"github.com/ssechat/ssechat/broker"
)

//go:embed static
var staticFiles embed.FS

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "ssechat:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fl := flag.NewFlagSet("ssechat", flag.ContinueOnError)
	defaultAddr := ":8080"
	if port := os.Getenv("PORT"); port != "" {
		defaultAddr = ":" + port
	}
	addr := fl.String("addr", defaultAddr, "listen address (the PORT environment variable sets the default port)")
	db := fl.String("db", "chat.db", "SQLite database file, or a postgres:// URL for PostgreSQL")
	redisURL := fl.String("redis", "", "redis:// URL that joins the instances on one PostgreSQL database into one chat; off when empty")
	redisPrefix := fl.String("redis-prefix", "", "prefix of every Redis key and channel (default: derived from the database name)")
	cost := fl.Int("password-cost", bcrypt.DefaultCost, "bcrypt cost; lower it only for tests and benchmarks")
	heartbeat := fl.Duration("heartbeat", 15*time.Second, "interval of the comment line that keeps idle streams open")
	replayLimit := fl.Int("replay-limit", 1000, "most events replayed on resume before the stream resets instead")
	streamBuffer := fl.Int("stream-buffer", 256, "events queued behind a stream's stuck write (100 ms) before the stream is closed as too slow; 4x that in any case")
	writeTimeout := fl.Duration("write-timeout", 10*time.Second, "a stream whose reader stalls this long is closed")
	writeRate := fl.Int("write-rate", 0, "stream writes a second before the fan-out batches events into fewer, larger writes; 0 is 25,000 per CPU")
	writeGap := fl.Duration("write-gap", 10*time.Millisecond, "shortest time between two writes to one stream; events arriving sooner go out together; 0 writes as soon as --write-rate allows")
	largeRoom := fl.Int("large-room", 100, "member count above which a room sends counts instead of per-user join/leave/presence notices")
	shutdownTimeout := fl.Duration("shutdown-timeout", 10*time.Second, "longest graceful shutdown")
	retention := fl.Duration("history-retention", 0, "prune events older than this (e.g. 720h); 0 keeps history forever")
	pprofAddr := fl.String("pprof", "", "serve net/http/pprof on this address (keep it on loopback); off when empty")
	logLevel := fl.String("log-level", "info", "debug, info, warn or error")
	if err := fl.Parse(args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	if *retention < 0 {
		return errors.New("--history-retention must not be negative")
	}
	if *writeRate < 0 {
		return errors.New("--write-rate must not be negative")
	}
	if *writeGap < 0 {
		return errors.New("--write-gap must not be negative")
	}
	if *writeGap == 0 {
		*writeGap = -1 // the broker's "none"; its zero is "the default"
	}
	if *cost < bcrypt.MinCost || *cost > bcrypt.MaxCost {
		return fmt.Errorf("--password-cost must be from %d to %d", bcrypt.MinCost, bcrypt.MaxCost)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	// go-redis prints every failed dial, several a second while Redis is
	// down; the cluster logs the outage and the recovery itself.
	redis.SetLogger(redisLogger{log})
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := app.New(ctx, app.Config{
		DB:           *db,
		Redis:        *redisURL,
		RedisPrefix:  *redisPrefix,
		PasswordCost: *cost,
		Retention:    *retention,
		Static:       static,
		Log:          log,
		Broker: broker.Config{
			Heartbeat:    *heartbeat,
			ReplayLimit:  *replayLimit,
			StreamBuffer: *streamBuffer,
			WriteTimeout: *writeTimeout,
			LargeRoom:    *largeRoom,
			WriteRate:    *writeRate,
			WriteGap:     *writeGap,
		},
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		a.Close()
		return err
	}
	if *pprofAddr != "" {
		if err := servePprof(ctx, *pprofAddr, log); err != nil {
			a.Close()
			return err
		}
	}
	log.Info("serving", "addr", ln.Addr().String(), "db", redactPassword(*db))
	err = a.Serve(ctx, ln, *shutdownTimeout)
	log.Info("stopped", "err", err)
	return err
}

// servePprof serves the profiler on its own listener, so it is never
// reachable through the public address.
func servePprof(ctx context.Context, addr string, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("pprof server", "err", err)
		}
	}()
	log.Info("pprof", "addr", ln.Addr().String())
	return nil
}

// redactPassword hides a password in a database URL before it is logged.
func redactPassword(db string) string {
	if !app.IsPostgres(db) {
		return db
	}
	u, err := url.Parse(db)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	return u.Redacted()
}

// redisLogger sends go-redis's own messages to the log at debug level.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
