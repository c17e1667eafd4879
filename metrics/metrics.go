// Package metrics is the service's Prometheus registry: the Go and process
// collectors, the broker's counts, the HTTP edge's request durations and
// rate limits, and the server that exposes them on a listener of its own,
// never the public one.
//
// Each App has its own registry (tests boot several in one process); the
// global default registry is never used.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ssechat/ssechat/broker"
)

// Metrics is one service's registry and the collectors it observes into.
// Its methods are safe for concurrent use.
type Metrics struct {
	reg         *prometheus.Registry
	requests    *prometheus.HistogramVec
	commits     prometheus.Histogram
	rateLimited *prometheus.CounterVec
}

// New returns a registry with the Go and process collectors and the
// service's own metrics; WatchBroker adds the broker's.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ssechat_http_request_duration_seconds",
			Help: "Time to answer an HTTP request, by route pattern (\"\" when none matched), method and status. " +
				"Streams that opened are not observed: they last hours.",
			// A POST waits for a durable commit (milliseconds); reads
			// answer from memory (microseconds).
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method", "code"}),
		commits: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ssechat_store_commit_duration_seconds",
			Help: "Time of one append transaction to the event log (a batch of writes, one commit), failed ones included.",
			// 0.25 ms to 8 s: SQLite's fsync, PostgreSQL's round
			// trips, up to the append deadline.
			Buckets: prometheus.ExponentialBuckets(.00025, 2, 16),
		}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ssechat_rate_limited_total",
			Help: "Requests refused by a rate limit, by limit.",
		}, []string{"limit"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.commits, m.rateLimited,
	)
	return m
}

// Registry is the registry itself, for collectors of other packages.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// ObserveRequest records one answered request; route is the route's
// pattern, never the raw path (its cardinality is the router's).
func (m *Metrics) ObserveRequest(route, method string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Observe(d.Seconds())
}

// RateLimited counts one request refused by the limit named limit.
func (m *Metrics) RateLimited(limit string) {
	m.rateLimited.WithLabelValues(limit).Inc()
}

// ObserveCommit records one append transaction's duration.
func (m *Metrics) ObserveCommit(d time.Duration) { m.commits.Observe(d.Seconds()) }

// Broker is where the broker's counts are read from at each scrape.
type Broker interface {
	Stats() broker.Stats
}

// WatchBroker exports b's counts, read when metrics are scraped.
func (m *Metrics) WatchBroker(b Broker) { m.reg.MustRegister(brokerCollector{b}) }

var (
	streamsOpenDesc = prometheus.NewDesc("ssechat_streams_open",
		"SSE streams this instance holds open.", nil, nil)
	usersOnlineDesc = prometheus.NewDesc("ssechat_users_online",
		"Users online on any instance, as this instance knows it.", nil, nil)
	eventsDesc = prometheus.NewDesc("ssechat_events_total",
		"Events by kind: logged events (message, private, join, leave, read) this instance applied, whoever appended them, "+
			"and live notices (presence, members) it planned to send to its streams.", []string{"kind"}, nil)
	deliveriesDesc = prometheus.NewDesc("ssechat_deliveries_total",
		"Event frames the fan-out queued to streams (one per event and stream; replays, snapshots and heartbeats not counted).", nil, nil)
	kickedDesc = prometheus.NewDesc("ssechat_slow_consumer_disconnects_total",
		"Streams closed because they fell behind; they resume from their Last-Event-ID.", nil, nil)
	replayedDesc = prometheus.NewDesc("ssechat_replayed_events_total",
		"Logged events replayed to resuming streams.", nil, nil)
)

// brokerCollector reads the broker's counters at scrape time, so that the
// fan-out's hot path never calls into Prometheus.
type brokerCollector struct{ b Broker }

func (c brokerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{streamsOpenDesc, usersOnlineDesc, eventsDesc, deliveriesDesc, kickedDesc, replayedDesc} {
		ch <- d
	}
}

func (c brokerCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.b.Stats()
	ch <- prometheus.MustNewConstMetric(streamsOpenDesc, prometheus.GaugeValue, float64(s.StreamsOpen))
	ch <- prometheus.MustNewConstMetric(usersOnlineDesc, prometheus.GaugeValue, float64(s.UsersOnline))
	for kind, n := range s.Events {
		ch <- prometheus.MustNewConstMetric(eventsDesc, prometheus.CounterValue, float64(n), string(kind))
	}
	ch <- prometheus.MustNewConstMetric(deliveriesDesc, prometheus.CounterValue, float64(s.Deliveries))
	ch <- prometheus.MustNewConstMetric(kickedDesc, prometheus.CounterValue, float64(s.Kicked))
	ch <- prometheus.MustNewConstMetric(replayedDesc, prometheus.CounterValue, float64(s.Replayed))
}
