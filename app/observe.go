package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/ssechat/ssechat/broker"
	"github.com/ssechat/ssechat/handlers"
	"github.com/ssechat/ssechat/metrics"
)

var (
	_ broker.Metrics   = (*metrics.Metrics)(nil)
	_ handlers.Metrics = (*metrics.Metrics)(nil)
)

// observe gives the service its own metrics registry (never the global
// one: tests boot several services in one process) and wires it, and the
// readiness checks, into cfg. The broker's counts join the registry once
// the broker runs (serveMetrics).
func observe(cfg *Config, st store, nw news) *metrics.Metrics {
	m := metrics.New()
	cfg.Broker.Metrics = m
	cfg.HTTP.Metrics = m
	// Head is one indexed read: the cheapest query that proves the
	// store answers.
	cfg.HTTP.Ready = append(cfg.HTTP.Ready, handlers.ReadyCheck{Name: "store", Ping: func(ctx context.Context) error {
		_, err := st.Head(ctx)
		return err
	}})
	if cfg.Redis != "" {
		cfg.HTTP.Ready = append(cfg.HTTP.Ready, handlers.ReadyCheck{Name: "redis", Ping: nw.Ping})
	}
	return m
}

// serveMetrics exports the broker's counts and, with cfg.MetricsAddr,
// serves the registry there.
func (a *App) serveMetrics(m *metrics.Metrics, cfg Config) error {
	m.WatchBroker(a.broker)
	if cfg.MetricsAddr == "" {
		return nil
	}
	srv, err := metrics.Listen(cfg.MetricsAddr, m, cfg.Log)
	if err != nil {
		return fmt.Errorf("--metrics-addr: %w", err)
	}
	a.metricsSrv = srv
	return nil
}

// MetricsAddr is the address the metrics are served on, "" if none.
func (a *App) MetricsAddr() string {
	if a.metricsSrv == nil {
		return ""
	}
	return a.metricsSrv.Addr().String()
}

// NewLogger returns a logger that writes w one line per record at level
// and above, as logfmt-style text (format "text") or as JSON ("json").
func NewLogger(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
