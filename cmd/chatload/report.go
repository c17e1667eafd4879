package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// result is one measured run, written as one JSON line so that a script can
// collect runs against several systems and render them side by side.
type result struct {
	Label  string `json:"label,omitempty"`
	Target string `json:"target"`
	Mode   string `json:"mode"`
	Time   string `json:"time"`

	Subs          int     `json:"subs,omitempty"`
	ConnectFailed int     `json:"connect_failed,omitempty"`
	ConnectSec    float64 `json:"connect_s,omitempty"`
	ConnectP99ms  float64 `json:"connect_p99_ms,omitempty"`
	ConnectRetry  int64   `json:"connect_retries,omitempty"`

	Rate          float64 `json:"rate,omitempty"`
	Publishers    int     `json:"publishers,omitempty"`
	Duration      float64 `json:"duration_s,omitempty"`
	Published     int64   `json:"published,omitempty"`
	Acked         int64   `json:"acked,omitempty"`
	PublishErrors int64   `json:"publish_errors,omitempty"`
	AchievedRate  float64 `json:"achieved_rate,omitempty"`

	Expected        int64   `json:"expected,omitempty"`
	Delivered       int64   `json:"delivered,omitempty"`
	DeliveredPerSec float64 `json:"delivered_per_s,omitempty"`
	P50ms           float64 `json:"p50_ms,omitempty"`
	P95ms           float64 `json:"p95_ms,omitempty"`
	P99ms           float64 `json:"p99_ms,omitempty"`
	MaxMs           float64 `json:"max_ms,omitempty"`
	Lost            int64   `json:"lost"`
	Dups            int64   `json:"dups"`
	Stray           int64   `json:"stray,omitempty"`
	Disconnects     int64   `json:"disconnects"`
	Reconnects      int64   `json:"reconnects,omitempty"`

	AckPerSec float64 `json:"ack_per_s,omitempty"`
	PostP50ms float64 `json:"post_p50_ms,omitempty"`
	PostP95ms float64 `json:"post_p95_ms,omitempty"`
	PostP99ms float64 `json:"post_p99_ms,omitempty"`
	PostMaxMs float64 `json:"post_max_ms,omitempty"`

	SearchP99ms float64 `json:"search_p99_ms,omitempty"`
	MaxRate     float64 `json:"max_rate,omitempty"`

	QuietSec      float64 `json:"quiet_s,omitempty"`
	Events        int64   `json:"events,omitempty"`
	EventsAtReady int64   `json:"events_at_ready,omitempty"`

	ServerRSSMiB     float64 `json:"server_rss_mib,omitempty"`
	ServerPeakRSSMiB float64 `json:"server_peak_rss_mib,omitempty"`
	ServerBaseRSSMiB float64 `json:"server_base_rss_mib,omitempty"`
	RSSPerConnKiB    float64 `json:"rss_per_conn_kib,omitempty"`
	ServerCPUPct     float64 `json:"server_cpu_pct,omitempty"`
	// With several server processes (-pid a,b) the figures above are their
	// sums, and these the processes' own, in -pid order.
	ServerRSSEachMiB []float64 `json:"server_rss_each_mib,omitempty"`
	ServerCPUEachPct []float64 `json:"server_cpu_each_pct,omitempty"`
	ClientCPUPct     float64   `json:"client_cpu_pct,omitempty"`
	// AuxCPUPct is the CPU of the processes matched by -aux-procs (the
	// cluster's PostgreSQL backends and Redis), % of one core; it is not
	// counted in OtherCPUPct.
	AuxCPUPct float64 `json:"aux_cpu_pct,omitempty"`
	AuxLabel  string  `json:"aux_label,omitempty"`
	// OtherCPUPct is the CPU used by neither the server nor chatload during
	// the measurement (% of one core); BusyBeforePct the machine's load
	// just before the run. Either above a few % means a contaminated run.
	OtherCPUPct   float64 `json:"other_cpu_pct"`
	BusyBeforePct float64 `json:"busy_before_pct"`

	Profile string `json:"profile,omitempty"` // server pprof file taken during the run
}

func appendResults(path string, rs []result) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, r := range rs {
		if err := enc.Encode(r); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func readResults(r io.Reader) ([]result, error) {
	var out []result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var res result
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			return nil, fmt.Errorf("results: %w", err)
		}
		out = append(out, res)
	}
	return out, sc.Err()
}

// summary is one table cell: the figures that decide the workload's target,
// flagged when other processes shared the machine.
func summary(r result) string {
	s := summaryFigures(r)
	if r.OtherCPUPct > otherCPUWarn {
		s += fmt.Sprintf(" ⚠ other processes used %.0f%% CPU", r.OtherCPUPct)
	}
	return s
}

func summaryFigures(r result) string {
	switch r.Mode {
	case "fanout":
		if r.ConnectFailed > 0 {
			return fmt.Sprintf("**%d of %d subscribers not ready after %.0f s**; then p99 %s ms, lost %d, disc %d",
				r.ConnectFailed, r.Subs+r.ConnectFailed, r.ConnectSec, num(r.P99ms), r.Lost, r.Disconnects)
		}
		return fmt.Sprintf("p50 %s / p99 %s / max %s ms; %s deliveries/s; lost %d, dup %d, disc %d; %s, %s",
			num(r.P50ms), num(r.P99ms), num(r.MaxMs), kilo(r.DeliveredPerSec), r.Lost, r.Dups, r.Disconnects, cpuText(r), rssText(r))
	case "search":
		if r.MaxRate == 0 {
			if r.Rate == 0 {
				return fmt.Sprintf("no rate tried met p99 ≤ %s ms with 0 lost", num(r.SearchP99ms))
			}
			return fmt.Sprintf("**none**: already at %s msg/s p99 %s ms, lost %d (%s deliveries/s, %s)",
				num(r.Rate), num(r.P99ms), r.Lost, kilo(r.DeliveredPerSec), cpuText(r))
		}
		return fmt.Sprintf("**%s msg/s** (%s deliveries/s): p99 %s ms, lost %d; %s",
			num(r.MaxRate), kilo(r.DeliveredPerSec), num(r.P99ms), r.Lost, cpuText(r))
	case "idle":
		return fmt.Sprintf("**%.1f KiB/conn** (%d conns, RSS %.0f → %.0f MiB)",
			r.RSSPerConnKiB, r.Subs, r.ServerBaseRSSMiB, r.ServerRSSMiB)
	case "write":
		s := fmt.Sprintf("**%s acked msg/s**; POST p50 %s / p99 %s ms; errors %d; %s",
			kilo(r.AckPerSec), num(r.PostP50ms), num(r.PostP99ms), r.PublishErrors, cpuText(r))
		if r.Lost > 0 || r.Dups > 0 {
			// Only when not zero, so that a clean cell reads as it always did.
			s += fmt.Sprintf("; **lost %d, dup %d**", r.Lost, r.Dups)
		}
		return s
	case "storm":
		if r.ConnectFailed > 0 {
			return fmt.Sprintf("**not all ready: %d of %d after %.0f s**, quiet at %.0f s, %s events received",
				r.Subs, r.Subs+r.ConnectFailed, r.ConnectSec, r.QuietSec, kilo(float64(r.Events)))
		}
		return fmt.Sprintf("**all ready in %.1f s** (%d/%d), quiet at %.1f s, %s events received",
			r.ConnectSec, r.Subs, r.Subs+r.ConnectFailed, r.QuietSec, kilo(float64(r.Events)))
	}
	return "?"
}

// cpuText is the server's CPU: "CPU 120%", or for several processes their
// sum and each ("CPU 150% (80+70)"), then the database's and Redis's when
// measured (-aux-procs).
func cpuText(r result) string {
	s := fmt.Sprintf("CPU %.0f%%", r.ServerCPUPct)
	if len(r.ServerCPUEachPct) > 1 {
		s += " (" + joinFigures(r.ServerCPUEachPct) + ")"
	}
	if r.AuxLabel != "" {
		s += fmt.Sprintf(", %s %.0f%%", r.AuxLabel, r.AuxCPUPct)
	}
	return s
}

// rssText is the server's RSS: summed over several processes, each after it.
func rssText(r result) string {
	s := fmt.Sprintf("RSS %.0f MiB", r.ServerRSSMiB)
	if len(r.ServerRSSEachMiB) > 1 {
		s += " (" + joinFigures(r.ServerRSSEachMiB) + ")"
	}
	return s
}

func joinFigures(vs []float64) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = fmt.Sprintf("%.0f", v)
	}
	return strings.Join(parts, "+")
}

func num(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func kilo(v float64) string {
	if v >= 10000 {
		return fmt.Sprintf("%.0fk", v/1000)
	}
	if v >= 1000 {
		return fmt.Sprintf("%.1fk", v/1000)
	}
	return fmt.Sprintf("%.0f", v)
}

// versus compares a result with another target's for the same workload
// (the cluster with the single node): the ratio of the figure its target is
// about, or "" when the workload has none.
func versus(r, base result, baseName string) string {
	switch {
	case r.Mode == "fanout" && base.Mode == "fanout" && base.P99ms > 0:
		return fmt.Sprintf("p99 %.2f× %s", r.P99ms/base.P99ms, baseName)
	case r.Mode == "write" && base.Mode == "write" && base.AckPerSec > 0:
		return fmt.Sprintf("acked/s %.2f× %s", r.AckPerSec/base.AckPerSec, baseName)
	}
	return ""
}

// writeTable renders results as a markdown table: one row per label (in
// first-seen order), one column per target. Fanout phases of a rate search
// are left out in favour of their summary row. vs maps a target to the one
// its cells are compared with (cluster=ours).
func writeTable(w io.Writer, rs []result, targets []string, targetsNote map[string]string, vs map[string]string) {
	var labels []string
	cells := map[string]map[string]string{}
	byTarget := map[string]map[string]result{}
	for _, r := range rs {
		if r.Label == "" {
			r.Label = r.Mode
		}
		if r.SearchP99ms > 0 && r.Mode != "search" {
			continue
		}
		if cells[r.Label] == nil {
			cells[r.Label] = map[string]string{}
			byTarget[r.Label] = map[string]result{}
			labels = append(labels, r.Label)
		}
		cells[r.Label][r.Target] = summary(r)
		byTarget[r.Label][r.Target] = r
	}
	for _, l := range labels {
		for t, baseName := range vs {
			r, ok := byTarget[l][t]
			base, okBase := byTarget[l][baseName]
			if !ok || !okBase {
				continue
			}
			if v := versus(r, base, baseName); v != "" {
				cells[l][t] += "; **" + v + "**"
			}
		}
	}
	fmt.Fprintf(w, "| workload | target |")
	for _, t := range targets {
		fmt.Fprintf(w, " %s |", t)
	}
	fmt.Fprintf(w, "\n|---|---|")
	for range targets {
		fmt.Fprintf(w, "---|")
	}
	fmt.Fprintln(w)
	for _, l := range labels {
		fmt.Fprintf(w, "| %s | %s |", l, targetsNote[l])
		for _, t := range targets {
			c := cells[l][t]
			if c == "" {
				c = "—"
			}
			fmt.Fprintf(w, " %s |", c)
		}
		fmt.Fprintln(w)
	}
}
