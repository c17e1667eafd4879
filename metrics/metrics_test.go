package metrics_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/ssechat/ssechat/app"
	"github.com/ssechat/ssechat/broker"
	"github.com/ssechat/ssechat/chat"
	"github.com/ssechat/ssechat/internal/chattest"
	"github.com/ssechat/ssechat/metrics"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}

// withMetrics serves the test server's metrics on a free loopback port.
func withMetrics(cfg *app.Config) { cfg.MetricsAddr = "127.0.0.1:0" }

// sample is one scraped series: its name with its labels sorted, as in
// `ssechat_events_total{kind="message"}`, or a histogram's _count.
type sample map[string]float64

// scrape GETs url and parses the Prometheus text format.
func scrape(t *testing.T, url string) sample {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: status %d", url, resp.StatusCode)
	}
	return parse(t, resp.Body)
}

// parse reads the Prometheus text format.
func parse(t *testing.T, r io.Reader) sample {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("not the Prometheus text format: %v", err)
	}
	out := sample{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			key := series(name, m.GetLabel())
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[series(name+"_count", m.GetLabel())] = float64(m.GetHistogram().GetSampleCount())
			default:
				out[key] = m.GetUntyped().GetValue()
			}
		}
	}
	return out
}

func series(name string, labels []*dto.LabelPair) string {
	if len(labels) == 0 {
		return name
	}
	parts := make([]string, 0, len(labels))
	for _, l := range labels {
		parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	sort.Strings(parts)
	return name + "{" + strings.Join(parts, ",") + "}"
}

// waitFor scrapes until every series in want has at least its value.
func waitFor(t *testing.T, url string, want sample) sample {
	t.Helper()
	var got sample
	chattest.Eventually(t, fmt.Sprint("metrics ", want), func() bool {
		got = scrape(t, url)
		for k, v := range want {
			if got[k] < v {
				return false
			}
		}
		return true
	})
	return got
}

// The metrics move as a real server works: a stream opens, a message is
// posted and fanned out, a stream resumes; every request but the open
// stream is timed by its route's pattern.
func TestMetricsFollowTheServer(t *testing.T) {
	srv := chattest.Start(t, withMetrics)
	url := "http://" + srv.App.MetricsAddr() + "/metrics"
	start := scrape(t, url)
	for _, name := range []string{
		"ssechat_streams_open", "ssechat_users_online", "ssechat_deliveries_total",
		"ssechat_slow_consumer_disconnects_total", "ssechat_replayed_events_total",
		`ssechat_events_total{kind="message"}`, `ssechat_events_total{kind="presence"}`,
		"go_goroutines", "process_cpu_seconds_total", "process_resident_memory_bytes",
	} {
		if _, ok := start[name]; !ok {
			t.Errorf("no %s in the first scrape", name)
		}
	}
	if start["ssechat_streams_open"] != 0 || start["ssechat_users_online"] != 0 {
		t.Errorf("before any stream: %v streams open, %v users online", start["ssechat_streams_open"], start["ssechat_users_online"])
	}

	alice, bob := srv.Login(t, "alice"), srv.Login(t, "bob")
	alice.Join("lobby")
	bob.Join("lobby")
	as := alice.Stream("")
	as.Ready()
	waitFor(t, url, sample{"ssechat_streams_open": 1, "ssechat_users_online": 1, `ssechat_events_total{kind="presence"}`: 1})

	sent := bob.Say("lobby", "hello")
	as.Expect("message", func(e chattest.Event) bool { return e.ID == sent.ID })
	got := waitFor(t, url, sample{
		`ssechat_events_total{kind="message"}`:        1,
		`ssechat_events_total{kind="join"}`:           2,
		"ssechat_deliveries_total":                    1,
		"ssechat_store_commit_duration_seconds_count": 3,
		`ssechat_http_request_duration_seconds_count{code="201",method="POST",route="/api/rooms/:room/messages"}`: 1,
		`ssechat_http_request_duration_seconds_count{code="200",method="POST",route="/api/login"}`:                2,
	})
	if got[`ssechat_events_total{kind="message"}`] != 1 {
		t.Errorf("%v message events, want 1", got[`ssechat_events_total{kind="message"}`])
	}

	// A resume replays what was missed.
	resumed := alice.Stream(fmt.Sprint(mustInt(t, sent.ID) - 1))
	resumed.Expect("message", func(e chattest.Event) bool { return e.ID == sent.ID })
	got = waitFor(t, url, sample{"ssechat_replayed_events_total": 1, "ssechat_streams_open": 2})

	// Streams last hours: an open one is not a request duration; a
	// refused one is.
	srv.Anonymous(t).Do("GET", "/api/stream", nil, nil)
	got = waitFor(t, url, sample{`ssechat_http_request_duration_seconds_count{code="401",method="GET",route="/api/stream"}`: 1})
	for k := range got {
		if strings.Contains(k, `route="/api/stream"`) && strings.Contains(k, `code="200"`) {
			t.Errorf("an open stream was timed: %s", k)
		}
	}
	// The route's pattern, never the raw path.
	for k := range got {
		if strings.Contains(k, "lobby") {
			t.Errorf("a raw path in a label: %s", k)
		}
	}

	resumed.Close()
	as.Close()
	chattest.Eventually(t, "the streams to close", func() bool {
		return scrape(t, url)["ssechat_streams_open"] == 0
	})
}

// A HEAD, served as the GET of its path, is timed as a HEAD.
func TestMetricsNameHEAD(t *testing.T) {
	srv := chattest.Start(t, withMetrics)
	url := "http://" + srv.App.MetricsAddr() + "/metrics"
	alice := srv.Login(t, "alice")
	req, _ := http.NewRequest("HEAD", srv.URL+"/api/me", nil)
	req.Header.Set("Authorization", "Bearer "+alice.Token)
	resp := alice.Raw(req)
	resp.Body.Close()
	alice.MustDo("GET", "/api/me", nil, nil, http.StatusOK)
	got := waitFor(t, url, sample{
		`ssechat_http_request_duration_seconds_count{code="200",method="HEAD",route="/api/me"}`: 1,
		`ssechat_http_request_duration_seconds_count{code="200",method="GET",route="/api/me"}`:  1,
	})
	if n := got[`ssechat_http_request_duration_seconds_count{code="200",method="GET",route="/api/me"}`]; n != 1 {
		t.Errorf("%v GETs of /api/me timed, want 1 (the HEAD counted as a GET?)", n)
	}
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("id %q: %v", s, err)
	}
	return n
}

// /metrics is served on its own listener only: the public one answers
// 404, and the metrics listener serves nothing else.
func TestMetricsNotOnThePublicListener(t *testing.T) {
	srv := chattest.Start(t, withMetrics)
	for _, c := range []struct{ url string }{
		{srv.URL + "/metrics"},
		{srv.URL + "/api/metrics"},
		{"http://" + srv.App.MetricsAddr() + "/"},
		{"http://" + srv.App.MetricsAddr() + "/api/me"},
	} {
		resp, err := http.Get(c.url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || strings.Contains(string(body), "ssechat_") {
			t.Errorf("GET %s: %d %.80q, want a 404 without metrics", c.url, resp.StatusCode, body)
		}
	}
	// Without an address, no listener.
	if off := chattest.Start(t); off.App.MetricsAddr() != "" {
		t.Errorf("metrics served on %s without MetricsAddr", off.App.MetricsAddr())
	}
}

// Each server has its own registry: two in one process count apart, and
// neither touches the global default registry.
func TestMetricsPerServer(t *testing.T) {
	a, b := chattest.Start(t, withMetrics), chattest.Start(t, withMetrics)
	a.Login(t, "alice").Join("lobby")
	urlA, urlB := "http://"+a.App.MetricsAddr()+"/metrics", "http://"+b.App.MetricsAddr()+"/metrics"
	waitFor(t, urlA, sample{`ssechat_events_total{kind="join"}`: 1})
	if n := scrape(t, urlB)[`ssechat_events_total{kind="join"}`]; n != 0 {
		t.Errorf("the other server counted %v joins", n)
	}
	families, err := prometheusDefaultGather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if strings.HasPrefix(f, "ssechat_") {
			t.Errorf("%s is in the default registry", f)
		}
	}
}

// A listener that cannot be had is an error at start, not a server that
// runs without the metrics it was told to serve.
func TestMetricsAddrTaken(t *testing.T) {
	srv := chattest.Start(t, withMetrics)
	cfg := app.Config{
		DB:          t.TempDir() + "/chat.db",
		Log:         slog.New(slog.DiscardHandler),
		MetricsAddr: srv.App.MetricsAddr(),
	}
	a, err := app.New(t.Context(), cfg)
	if err == nil {
		a.Close()
		t.Fatal("a second server started on a metrics address in use")
	}
	if !strings.Contains(err.Error(), "--metrics-addr") {
		t.Errorf("error %q does not name the flag", err)
	}
}

// The broker's counts, as the collector exports them.
type fakeBroker broker.Stats

func (f fakeBroker) Stats() broker.Stats { return broker.Stats(f) }

type fakeRefuser uint64

func (f fakeRefuser) Refused() uint64 { return uint64(f) }

func TestCollectorExportsBrokerStats(t *testing.T) {
	m := metrics.New()
	m.WatchBroker(fakeBroker{
		StreamsOpen: 7, UsersOnline: 5, Deliveries: 1000, Kicked: 2, Replayed: 30,
		Events: map[chat.Kind]int64{chat.KindMessage: 11, chat.KindPresence: 4},
	})
	if got := gather(t, m)[`ssechat_connections_refused_total{reason="per_ip"}`]; got != 0 {
		t.Errorf("refused connections before a listener is watched: %v, want 0", got)
	}
	m.WatchConnections(fakeRefuser(9))
	m.RateLimited("post")
	m.RateLimited("post")
	m.RateLimited("login")
	m.ObserveCommit(3 * time.Millisecond)
	m.ObserveRequest("/api/me", "GET", 200, time.Millisecond)
	got := gather(t, m)
	want := sample{
		"ssechat_streams_open": 7, "ssechat_users_online": 5, "ssechat_deliveries_total": 1000,
		"ssechat_slow_consumer_disconnects_total": 2, "ssechat_replayed_events_total": 30,
		`ssechat_events_total{kind="message"}`: 11, `ssechat_events_total{kind="presence"}`: 4,
		`ssechat_rate_limited_total{limit="post"}`: 2, `ssechat_rate_limited_total{limit="login"}`: 1,
		`ssechat_connections_refused_total{reason="per_ip"}`:                                   9,
		"ssechat_store_commit_duration_seconds_count":                                          1,
		`ssechat_http_request_duration_seconds_count{code="200",method="GET",route="/api/me"}`: 1,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// gather reads m's registry as a scrape would.
func gather(t *testing.T, m *metrics.Metrics) sample {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, f := range families {
		if _, err := expfmt.MetricFamilyToText(&b, f); err != nil {
			t.Fatal(err)
		}
	}
	return parse(t, strings.NewReader(b.String()))
}

// prometheusDefaultGather lists the families of the global default
// registry, which the service must leave alone.
func prometheusDefaultGather() ([]string, error) {
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
	}
	slices.Sort(names)
	return names, nil
}
