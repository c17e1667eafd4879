// Command ssechat is a chat server that speaks Server-Sent Events.
package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
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

	"github.com/ssechat/ssechat/app"
	"github.com/ssechat/ssechat/broker"
	"github.com/ssechat/ssechat/handlers"
)

//go:embed static
var staticFiles embed.FS

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run serves until SIGINT or SIGTERM and returns the exit status: 0 after
// a clean stop or --help, 2 for settings it refuses, 1 for a failure.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	s, err := parseSettings(args, getenv, stdout, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		return 2
	}
	if err := serve(s, stderr); err != nil {
		fmt.Fprintln(stderr, "ssechat:", err)
		return 1
	}
	return 0
}

func serve(s *settings, stderr io.Writer) error {
	// On the command line 0 means "off"; in the configs it means "the
	// default", and negative means "off".
	writeGap, idle, body := s.writeGap, s.idleTimeout, s.bodyTimeout
	for _, d := range []*time.Duration{&writeGap, &idle, &body} {
		if *d == 0 {
			*d = -1
		}
	}
	maxConns := s.maxConnsPerIP
	if s.limits.Off {
		maxConns = 0
	}
	log, err := app.NewLogger(stderr, s.logFormat, s.logLevel)
	if err != nil {
		return err
	}
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
		DB:            s.db,
		Redis:         s.redis,
		RedisPrefix:   s.redisPrefix,
		PasswordCost:  s.passwordCost,
		Retention:     s.retention,
		SessionTTL:    s.sessionTTL,
		MetricsAddr:   s.metricsAddr,
		IdleTimeout:   idle,
		MaxConnsPerIP: maxConns,
		TLSCert:       s.tlsCert,
		TLSKey:        s.tlsKey,
		HTTP: handlers.Options{
			TrustedProxies: s.trustedProxies,
			BodyTimeout:    body,
			Limits:         s.limits,
			AccessLog:      s.accessLog,
		},
		Static: static,
		Log:    log,
		Broker: broker.Config{
			Heartbeat:    s.heartbeat,
			ReplayLimit:  s.replayLimit,
			StreamBuffer: s.streamBuffer,
			WriteTimeout: s.writeTimeout,
			LargeRoom:    s.largeRoom,
			WriteRate:    s.writeRate,
			WriteGap:     writeGap,
		},
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		a.Close()
		return err
	}
	if s.pprof != "" {
		if err := servePprof(ctx, s.pprof, log); err != nil {
			a.Close()
			return err
		}
	}
	log.Info("serving", "addr", ln.Addr().String(), "db", redactPassword(s.db), "tls", s.tlsCert != "", "limits", !s.limits.Off)
	err = a.Serve(ctx, ln, s.shutdownTimeout)
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
