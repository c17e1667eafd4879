// Package app wires the store, accounts, broker and router into one
// service, so that main and the end-to-end tests boot the same thing.
package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ssechat/ssechat/auth"
	"github.com/ssechat/ssechat/broker"
	"github.com/ssechat/ssechat/handlers"
	"github.com/ssechat/ssechat/store/sqlite"
)

// Config is everything the service can be told at start.
type Config struct {
	DB           string // SQLite file path
	PasswordCost int    // bcrypt cost
	Broker       broker.Config
	Retention    time.Duration // prune events older than this; 0 keeps them forever
	Static       fs.FS
	Log          *slog.Logger
}

// App is a running service.
type App struct {
	store      *sqlite.Store
	broker     *broker.Broker
	handler    http.Handler
	stopPruner func()
}

// New opens the store and starts the broker.
func New(ctx context.Context, cfg Config) (*App, error) {
	if strings.HasPrefix(cfg.DB, "postgres://") || strings.HasPrefix(cfg.DB, "postgresql://") {
		return nil, errors.New("PostgreSQL is not supported yet: give --db a SQLite file path")
	}
	store, err := sqlite.Open(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	b, err := broker.New(ctx, store, cfg.Log, cfg.Broker)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("start broker: %w", err)
	}
	gin.SetMode(gin.ReleaseMode)
	accounts := auth.New(store, cfg.PasswordCost)
	a := &App{
		store:      store,
		broker:     b,
		handler:    handlers.New(cfg.Log, accounts, b, store, cfg.Static),
		stopPruner: func() {},
	}
	if cfg.Retention > 0 {
		a.stopPruner = store.KeepHistory(ctx, cfg.Retention, sqlite.PruneEvery, cfg.Log)
	}
	return a, nil
}

// Handler is the HTTP handler of the whole service.
func (a *App) Handler() http.Handler { return a.handler }

// Broker exposes counters for tests and metrics.
func (a *App) Broker() *broker.Broker { return a.broker }

// Serve serves on ln until ctx ends, then shuts down gracefully within
// shutdownTimeout: open streams are told to reconnect and closed, in-flight
// writes are finished and acknowledged, then the database is closed.
func (a *App) Serve(ctx context.Context, ln net.Listener, shutdownTimeout time.Duration) error {
	// No WriteTimeout: it would kill every stream at that age. Streams get
	// a per-write deadline instead.
	srv := &http.Server{Handler: a.handler, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		a.Close()
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	// Streams never go idle, so http.Server.Shutdown alone would wait for
	// them until the deadline: the broker ends them first, in parallel.
	streamsDone := make(chan error, 1)
	go func() { streamsDone <- a.broker.Shutdown(sctx) }()
	err := srv.Shutdown(sctx)
	err = errors.Join(err, <-streamsDone)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return errors.Join(err, a.Close())
}

// Close stops the broker and closes the database.
func (a *App) Close() error {
	a.stopPruner()
	a.broker.Close()
	return a.store.Close()
}
