// Package app wires the store, accounts, broker and router into one
// service, so that main and the end-to-end tests boot the same thing.
package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/ssechat/ssechat/auth"
	"github.com/ssechat/ssechat/broker"
	"github.com/ssechat/ssechat/cluster"
	"github.com/ssechat/ssechat/handlers"
	"github.com/ssechat/ssechat/metrics"
	"github.com/ssechat/ssechat/store/postgres"
	"github.com/ssechat/ssechat/store/sqlite"
)

// Config is everything the service can be told at start.
type Config struct {
	// DB is a SQLite file path, or a postgres:// URL for PostgreSQL.
	DB string
	// Redis, a redis:// URL, joins the instances on one PostgreSQL
	// database into one chat; RedisPrefix starts every key and channel
	// (default: derived from the database name).
	Redis        string
	RedisPrefix  string
	PasswordCost int // bcrypt cost
	Broker       broker.Config
	HTTP         handlers.Options
	Retention    time.Duration // prune events older than this; 0 keeps them forever
	Static       fs.FS
	Log          *slog.Logger
	// SessionTTL is how long a session lives after its last recorded use
	// (0: auth.DefaultSessionTTL, 720h); expired ones are pruned.
	SessionTTL time.Duration
	// Clock times sessions; nil is time.Now (tests move it).
	Clock func() time.Time
	// IdleTimeout closes a keep-alive connection that waits this long for
	// its next request (0: DefaultIdleTimeout; negative: never). Streams
	// are not idle connections (serve.go).
	IdleTimeout time.Duration
	// MaxConnsPerIP caps the open connections of one client address (an
	// IPv6 /64), streams included; 0 is no cap (internal/netguard).
	MaxConnsPerIP int
	// TLSCert and TLSKey, PEM files, make Serve speak HTTPS with HTTP/2.
	TLSCert, TLSKey string
	// MetricsAddr serves Prometheus metrics at /metrics on a listener
	// of its own, never the public one; "" serves none (observe.go).
	MetricsAddr string
}

// store is everything the service keeps durably.
type store interface {
	broker.Store
	auth.Store
	handlers.History
	historyPruner
	keyPruner
	Close() error
}

// news is how the instances sharing a store hear of each other.
type news interface {
	broker.Cluster
	auth.Ender
	Start(ctx context.Context, l cluster.Listener)
	Ping(ctx context.Context) error
	Close() error
}

var (
	_ store = (*sqlite.Store)(nil)
	_ store = (*postgres.Store)(nil)
	_ news  = (*cluster.Local)(nil)
	_ news  = (*cluster.Redis)(nil)
)

// App is a running service.
type App struct {
	store      store
	news       news
	broker     *broker.Broker
	handler    http.Handler
	stopPruner func()
	cfg        Config           // what Serve needs (serve.go)
	metrics    *metrics.Metrics // the registry, served or not (observe.go)
	metricsSrv *metrics.Server  // nil: no metrics listener

	// closeLimits closes the limits' connection to Redis (limits.go).
	closeLimits func() error
}

// IsPostgres reports whether db names a PostgreSQL database rather than a
// SQLite file.
func IsPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// New opens the store, joins the cluster and starts the broker.
func New(ctx context.Context, cfg Config) (*App, error) {
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	nw, err := openNews(ctx, cfg)
	if err != nil {
		st.Close()
		return nil, err
	}
	m := observe(&cfg, st, nw)
	b, err := broker.New(ctx, st, nw, cfg.Log, cfg.Broker)
	if err != nil {
		nw.Close()
		st.Close()
		return nil, fmt.Errorf("start broker: %w", err)
	}
	gin.SetMode(gin.ReleaseMode)
	accounts := auth.New(st, nw, cfg.PasswordCost, auth.WithSessionTTL(cfg.SessionTTL), auth.WithClock(cfg.Clock))
	nw.Start(ctx, &listener{broker: b, accounts: accounts, log: cfg.Log})
	closeLimits := shareLimits(&cfg)
	a := &App{
		store:      st,
		news:       nw,
		broker:     b,
		handler:    handlers.New(cfg.Log, accounts, b, st, cfg.Static, cfg.HTTP),
		stopPruner: func() {},
		cfg:        cfg,
		metrics:    m,

		closeLimits: closeLimits,
	}
	if err := a.serveMetrics(m, cfg); err != nil {
		a.Close()
		return nil, err
	}
	if cfg.Retention > 0 {
		a.stopPruner = keepHistory(ctx, st, cfg.Retention, historyPruneEvery, cfg.Log)
	}
	// Expired sessions are refused anyway; pruning deletes them and ends
	// the streams they still hold.
	stopHistory, stopSessions := a.stopPruner, accounts.KeepSessions(ctx, auth.PruneEvery, cfg.Log)
	stopKeys := keepIdempotencyKeys(ctx, st, keyPruneEvery, cfg.Log)
	a.stopPruner = func() { stopKeys(); stopSessions(); stopHistory() }
	return a, nil
}

func openStore(ctx context.Context, cfg Config) (store, error) {
	if !IsPostgres(cfg.DB) {
		if cfg.Redis != "" {
			return nil, errors.New("--redis joins instances on one PostgreSQL database: give --db a postgres:// URL")
		}
		return sqlite.Open(ctx, cfg.DB)
	}
	st, err := postgres.Open(ctx, cfg.DB)
	if err != nil {
		return nil, fmt.Errorf("open PostgreSQL: %w", err)
	}
	return st, nil
}

func openNews(ctx context.Context, cfg Config) (news, error) {
	if cfg.Redis == "" {
		if IsPostgres(cfg.DB) {
			cfg.Log.Warn("no --redis: this instance runs alone; other instances on the same database would not hear of its events, presence or logouts")
		}
		return cluster.NewLocal(), nil
	}
	prefix := cfg.RedisPrefix
	if prefix == "" {
		prefix = DefaultRedisPrefix(cfg.DB)
	}
	instance := uuid.NewString()
	r, err := cluster.Open(ctx, cfg.Redis, prefix, instance, cfg.Log)
	if err != nil {
		return nil, fmt.Errorf("join the cluster through Redis: %w", err)
	}
	cfg.Log.Info("joined the cluster", "redis_prefix", prefix, "instance", instance)
	return r, nil
}

// DefaultRedisPrefix derives the Redis prefix from the database's name,
// so that two clusters on different databases can share one Redis.
func DefaultRedisPrefix(db string) string {
	name := "ssechat"
	if u, err := url.Parse(db); err == nil {
		if n := strings.Trim(u.Path, "/"); n != "" {
			name = n
		}
		if sp := u.Query().Get("search_path"); sp != "" {
			name += "." + sp
		}
	}
	return "ssechat:" + name + ":"
}

// Handler is the HTTP handler of the whole service.
func (a *App) Handler() http.Handler { return a.handler }

// Broker exposes counters for tests and metrics.
func (a *App) Broker() *broker.Broker { return a.broker }

// Close stops the broker, says goodbye to the cluster (users whose last
// stream was here go offline everywhere) and closes the database.
func (a *App) Close() error {
	a.stopPruner()
	a.broker.Close()
	return errors.Join(a.news.Close(), a.store.Close(), a.metricsSrv.Close(), a.closeLimits())
}

// listener hands the cluster's news to the broker and the accounts.
type listener struct {
	broker   *broker.Broker
	accounts *auth.Service
	log      *slog.Logger
}

func (l *listener) LogGrew(head int64)                       { l.broker.LogGrew(head) }
func (l *listener) PresenceChanged(user string, online bool) { l.broker.PresenceChanged(user, online) }

func (l *listener) SessionEnded(key string) {
	l.accounts.Forget(key)
	l.broker.EndSession(key)
}

// Resync follows a break in the news: logouts may have gone unheard, so
// the session cache is emptied and every open stream's session checked.
func (l *listener) Resync() {
	l.accounts.ForgetAll()
	l.broker.Resync()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, key := range l.broker.Sessions() {
			valid, err := l.accounts.Valid(ctx, key)
			if err != nil {
				l.log.Warn("check open streams' sessions", "err", err)
				return
			}
			if !valid {
				l.broker.EndSession(key)
			}
		}
	}()
}
