package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// config is everything a run needs; main fills it from flags.
type config struct {
	Mode        string
	Target      string
	Name        string   // in the results: Target, or -as
	Addr        string   // as given: one host:port or several, comma-separated
	Addrs       []string // the instances, parsed from Addr
	PIDs        []int    // server processes (one per instance), for RSS and CPU
	AuxProcs    []string // substrings of /proc/PID/cmdline: the database's and Redis's processes
	AuxLabel    string   // what to call them in the results
	Label       string
	Room        string
	Subs        int
	Rates       []float64
	Publishers  int
	Duration    time.Duration
	Drain       time.Duration
	SearchP99   time.Duration
	Members     int
	Posters     int
	Hold        time.Duration
	Concurrency int
	ConnectWait time.Duration
	Quiet       time.Duration
	Prefix      string
}

// runner holds what the workloads share.
type runner struct {
	cfg  config
	prof profiler
	sys  system
	col  *collector
	log  *slog.Logger
	seq  atomic.Uint64
}

func (r *runner) baseResult() result {
	return result{
		Label:  r.cfg.Label,
		Target: r.cfg.Name,
		Mode:   r.cfg.Mode,
		Time:   time.Now().UTC().Format(time.RFC3339),
	}
}

// procPair samples the server processes (when --pid is set; server is
// their sum), the auxiliary ones (--aux-procs), this process and the whole
// machine.
type procPair struct {
	servers      []procSample
	server, self procSample
	aux          map[int]time.Duration
	machine      time.Duration
}

func (r *runner) sample() procPair {
	var p procPair
	for _, pid := range r.cfg.PIDs {
		s, err := readProc(pid)
		if err != nil {
			r.log.Warn("cannot read server /proc", "pid", pid, "err", err)
		}
		p.servers = append(p.servers, s)
	}
	p.server = sumProcs(p.servers)
	if len(r.cfg.AuxProcs) > 0 {
		p.aux = auxCPU(r.cfg.AuxProcs, append([]int{os.Getpid()}, r.cfg.PIDs...))
	}
	p.self, _ = readProc(os.Getpid())
	p.machine, _ = machineCPU()
	return p
}

func (r *runner) fillProc(res *result, a, b procPair) {
	if len(r.cfg.PIDs) > 0 {
		res.ServerRSSMiB = float64(b.server.RSSKiB) / 1024
		res.ServerCPUPct = cpuPercent(a.server, b.server)
	}
	if len(r.cfg.PIDs) > 1 && len(a.servers) == len(b.servers) {
		// Each process's own figures; one that could not be read (it
		// exited) counts 0 rather than a negative difference.
		res.ServerCPUPct = 0
		for i := range b.servers {
			cpu := 0.0
			if !a.servers[i].Failed && !b.servers[i].Failed {
				cpu = cpuPercent(a.servers[i], b.servers[i])
			}
			res.ServerRSSEachMiB = append(res.ServerRSSEachMiB, float64(b.servers[i].RSSKiB)/1024)
			res.ServerCPUEachPct = append(res.ServerCPUEachPct, cpu)
			res.ServerCPUPct += cpu
		}
	}
	res.ClientCPUPct = cpuPercent(a.self, b.self)
	wall := b.self.At.Sub(a.self.At)
	if len(r.cfg.AuxProcs) > 0 && wall > 0 {
		res.AuxCPUPct = 100 * float64(auxDelta(a.aux, b.aux)) / float64(wall)
		res.AuxLabel = r.cfg.AuxLabel
	}
	if wall > 0 && b.machine > 0 {
		machine := 100 * float64(b.machine-a.machine) / float64(wall)
		res.OtherCPUPct = machine - res.ServerCPUPct - res.ClientCPUPct - res.AuxCPUPct
		if res.OtherCPUPct > otherCPUWarn {
			r.log.Warn("other processes used the CPU during the measurement: the numbers are not clean",
				"other_cpu_pct", int(res.OtherCPUPct))
		}
	}
}

// otherCPUWarn is how much CPU (% of one core) other processes may take
// during a measurement before its result is flagged.
const otherCPUWarn = 15

// checkQuiet measures the machine for a second before a run and warns when
// something else is busy (the load would share the two cores with it).
func (r *runner) checkQuiet(ctx context.Context) float64 {
	a, err := machineCPU()
	if err != nil {
		return 0
	}
	t := time.Now()
	if sleepCtx(ctx, time.Second) != nil {
		return 0
	}
	b, _ := machineCPU()
	busy := 100 * float64(b-a) / float64(time.Since(t))
	if busy > otherCPUWarn {
		r.log.Warn("the machine is busy before the run starts", "busy_cpu_pct", int(busy))
	}
	return busy
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = prefix + strconv.Itoa(i)
	}
	return out
}

// openAll opens every subscriber's connection and returns which ones became
// ready and how long the slowest took.
func (r *runner) openAll(ctx context.Context, users []string, room string, first int, enter bool) ([]bool, time.Duration, *histogram, error) {
	counted := make([]bool, len(users))
	var connHist histogram
	octx, cancel := context.WithTimeout(ctx, r.cfg.ConnectWait)
	defer cancel()
	start := time.Now()
	failed, err := forEach(octx, len(users), r.cfg.Concurrency, func(_ context.Context, i int) error {
		t := time.Now()
		// The connection must outlive octx, which only bounds the wait.
		errc := make(chan error, 1)
		go func() {
			if enter {
				errc <- r.sys.Enter(ctx, first+i, users[i], room)
			} else {
				errc <- r.sys.Open(ctx, first+i, users[i], room)
			}
		}()
		select {
		case err := <-errc:
			if err != nil {
				return err
			}
		case <-octx.Done():
			return octx.Err()
		}
		connHist.Record(time.Since(t))
		counted[i] = true
		return nil
	})
	elapsed := time.Since(start)
	if failed > 0 {
		r.log.Warn("some connections failed", "failed", failed, "of", len(users), "err", err)
		err = fmt.Errorf("%d of %d connections failed: %w", failed, len(users), err)
	}
	return counted, elapsed, &connHist, err
}

// runFanout: N subscribers in one room, then P publishers at each rate.
func (r *runner) runFanout(ctx context.Context) ([]result, error) {
	cfg := r.cfg
	subs := names(cfg.Prefix+"sub-", cfg.Subs)
	pubs := names(cfg.Prefix+"pub-", cfg.Publishers)
	r.log.Info("preparing accounts", "subs", len(subs), "publishers", len(pubs))
	if err := r.sys.Prepare(ctx, append(append([]string{}, subs...), pubs...), cfg.Room); err != nil {
		return nil, err
	}
	r.log.Info("opening streams", "n", len(subs))
	a := r.sample()
	counted, connTime, connHist, connErr := r.openAll(ctx, subs, cfg.Room, 0, false)
	nReady := 0
	for _, ok := range counted {
		if ok {
			nReady++
		}
	}
	r.log.Info("streams ready", "ready", nReady, "seconds", connTime.Seconds(), "p99", connHist.Quantile(0.99),
		"retries", r.col.earlyRetries.Load())
	if nReady == 0 {
		return nil, fmt.Errorf("no subscriber connected: %w", connErr)
	}
	posters := make([]poster, len(pubs))
	for i, u := range pubs {
		// On Socket.IO the poster is in the room; its deliveries are not
		// counted (index -1) so every counted subscriber is a pure listener.
		p, err := r.sys.Publisher(ctx, -1, u, cfg.Room)
		if err != nil {
			return nil, fmt.Errorf("publisher %s: %w", u, err)
		}
		posters[i] = p
	}
	// Let the server settle after the connect burst before measuring.
	if err := sleepCtx(ctx, time.Second); err != nil {
		return nil, err
	}
	var out []result
	best := -1
	for _, rate := range cfg.Rates {
		res := r.baseResult()
		res.Subs = nReady
		res.ConnectFailed = len(subs) - nReady
		res.ConnectSec = connTime.Seconds()
		res.ConnectP99ms = ms(connHist.Quantile(0.99))
		res.ConnectRetry = r.col.earlyRetries.Load()
		res.Rate = rate
		res.Publishers = len(posters)
		r.fanoutPhase(ctx, &res, posters, counted, nReady, rate)
		_ = a
		out = append(out, res)
		r.log.Info("phase done", "rate", rate, "delivered/s", int(res.DeliveredPerSec),
			"p50ms", res.P50ms, "p99ms", res.P99ms, "max_ms", res.MaxMs, "post_p99ms", res.PostP99ms, "lost", res.Lost, "dups", res.Dups,
			"disconnects", res.Disconnects, "server_cpu", int(res.ServerCPUPct), "client_cpu", int(res.ClientCPUPct))
		if ctx.Err() != nil {
			break
		}
		if cfg.SearchP99 > 0 {
			if res.Lost == 0 && res.P99ms <= ms(cfg.SearchP99) && res.AchievedRate >= 0.95*rate {
				best = len(out) - 1
			} else {
				break
			}
		}
	}
	if cfg.SearchP99 > 0 {
		s := r.baseResult()
		s.Mode = "search"
		s.SearchP99ms = ms(cfg.SearchP99)
		if best >= 0 {
			b := out[best]
			s = b
			s.Mode = "search"
			s.SearchP99ms = ms(cfg.SearchP99)
			s.MaxRate = b.Rate
		} else if len(out) > 0 {
			// Nothing passed: report the lowest rate's figures, which say
			// by how much it missed.
			s = out[0]
			s.Mode = "search"
			s.SearchP99ms = ms(cfg.SearchP99)
		}
		out = append(out, s)
	}
	return out, nil
}

// drainStall is how long deliveries may stop progressing before the drain
// gives up on the missing ones.
const drainStall = 3 * time.Second

// drain waits until done() or, bounded by the drain time, until deliveries
// stop arriving for drainStall.
func (r *runner) drain(ctx context.Context, done func() bool, ph *phase) {
	deadline := time.Now().Add(r.cfg.Drain)
	last, lastAt := ph.delivered.Load(), time.Now()
	for !done() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
		if n := ph.delivered.Load(); n != last {
			last, lastAt = n, time.Now()
		} else if time.Since(lastAt) >= drainStall {
			return
		}
	}
}

// maxInFlight bounds a publisher's unacknowledged messages: past it the
// publisher falls behind its schedule, which shows as an achieved rate below
// the requested one.
const maxInFlight = 64

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fanoutPhase publishes at rate for the configured duration, then waits for
// deliveries to drain, and fills res.
func (r *runner) fanoutPhase(ctx context.Context, res *result, posters []poster, counted []bool, nReady int, rate float64) {
	cfg := r.cfg
	planned := uint64(rate*cfg.Duration.Seconds()) + uint64(len(posters)) + 16
	base := r.seq.Load()
	ph := newPhase(len(counted), base, planned)
	r.col.cur.Store(ph)
	disc0, reco0 := r.col.disconnects.Load(), r.col.reconnects.Load()

	a := r.sample()
	start := time.Now()
	peak := r.peakSampler(ctx)
	profDone := r.prof.cpu(ctx, fmt.Sprintf("rate%g", rate), cfg.Duration)
	r.prof.goroutinesAt(ctx, fmt.Sprintf("rate%g", rate), cfg.Duration*3/4)
	var wg sync.WaitGroup
	var pubErrs atomic.Int64
	var postHist histogram
	interval := time.Duration(float64(time.Second) * float64(len(posters)) / rate)
	for j, p := range posters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Publisher j's k-th message is due at start + (k*P+j)/rate: an
			// open-loop schedule. A slow acknowledgement does not hold back
			// the next message (up to maxInFlight outstanding per
			// publisher), so a slow server is not spared load it cannot
			// take; the text carries the real send time, so a late send
			// still reports honest latency.
			sem := make(chan struct{}, maxInFlight)
			var inflight sync.WaitGroup
			defer inflight.Wait()
			offset := time.Duration(float64(time.Second) * float64(j) / rate)
			for k := 0; ; k++ {
				due := start.Add(offset + time.Duration(k)*interval)
				if due.Sub(start) >= cfg.Duration {
					return
				}
				if d := time.Until(due); d > 0 {
					if sleepCtx(ctx, d) != nil {
						return
					}
				}
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
				seq := r.seq.Add(1) - 1
				if seq-base >= planned {
					return
				}
				inflight.Add(1)
				go func() {
					defer inflight.Done()
					defer func() { <-sem }()
					sent := time.Now()
					text := appendMarker(make([]byte, 0, 48), seq, sent)
					if err := p.Post(ctx, text); err != nil {
						if ctx.Err() == nil {
							pubErrs.Add(1)
							r.log.Debug("publish failed", "err", err)
						}
						return
					}
					postHist.Record(time.Since(sent))
					ph.Ack(seq)
				}()
			}
		}()
	}
	wg.Wait()
	pubEnd := time.Now()
	b := r.sample()

	// Drain: wait until every counted subscriber has every acknowledged
	// message, while deliveries still progress (a slow server is late, not
	// lossy), bounded by the drain time. What is missing then is lost.
	want := ph.ackCount.Load() * int64(nReady)
	r.drain(ctx, func() bool { return ph.delivered.Load() >= want }, ph)
	peakRSS := peak()
	res.Profile = profDone()

	last := time.Unix(0, r.col.lastEventNs.Load())
	span := last.Sub(start)
	if span < pubEnd.Sub(start) {
		span = pubEnd.Sub(start)
	}
	res.Duration = pubEnd.Sub(start).Seconds()
	res.Published = int64(r.seq.Load() - base)
	res.Acked = ph.ackCount.Load()
	res.PublishErrors = pubErrs.Load()
	// Sends actually made over the scheduled time: below the requested rate
	// when publishers ran out of in-flight slots.
	res.AchievedRate = float64(res.Published) / cfg.Duration.Seconds()
	res.Expected = want
	res.Delivered = ph.delivered.Load()
	res.DeliveredPerSec = float64(res.Delivered) / span.Seconds()
	res.P50ms = ms(ph.hist.Quantile(0.50))
	res.P95ms = ms(ph.hist.Quantile(0.95))
	res.P99ms = ms(ph.hist.Quantile(0.99))
	res.MaxMs = ms(ph.hist.Max())
	res.Lost = ph.Lost(counted)
	res.Dups = ph.dups.Load()
	res.Stray = ph.stray.Load()
	res.PostP50ms = ms(postHist.Quantile(0.50))
	res.PostP99ms = ms(postHist.Quantile(0.99))
	res.PostMaxMs = ms(postHist.Max())
	res.Disconnects = r.col.disconnects.Load() - disc0
	res.Reconnects = r.col.reconnects.Load() - reco0
	r.fillProc(res, a, b)
	if peakRSS > 0 {
		res.ServerPeakRSSMiB = float64(peakRSS) / 1024
	}
}

// peakSampler polls the server's RSS every 250 ms until the returned func is
// called, which returns the peak in KiB.
func (r *runner) peakSampler(ctx context.Context) func() int64 {
	if len(r.cfg.PIDs) == 0 {
		return func() int64 { return 0 }
	}
	var peak atomic.Int64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			// With several instances, the peak of their sum.
			var rss int64
			for _, pid := range r.cfg.PIDs {
				if s, err := readProc(pid); err == nil {
					rss += s.RSSKiB
				}
			}
			if rss > peak.Load() {
				peak.Store(rss)
			}
			select {
			case <-t.C:
			case <-done:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() int64 {
		close(done)
		<-stopped
		return peak.Load()
	}
}

// runWrite: a room of Members, Posters of them posting back-to-back
// (closed loop) for the duration; acknowledged messages/s and POST latency.
func (r *runner) runWrite(ctx context.Context) ([]result, error) {
	cfg := r.cfg
	members := names(cfg.Prefix+"mem-", cfg.Members)
	if cfg.Posters > len(members) {
		return nil, fmt.Errorf("--posters %d > --members %d", cfg.Posters, len(members))
	}
	if err := r.sys.Prepare(ctx, members, cfg.Room); err != nil {
		return nil, err
	}
	// Listeners: every member has one live connection. On Socket.IO a
	// poster's socket is that connection; on ours posters post over HTTP
	// and also keep a stream.
	first := 0
	if r.sys.PosterListens() {
		first = cfg.Posters
	}
	counted, connTime, _, err := r.openAll(ctx, members[first:], cfg.Room, first, false)
	if err != nil {
		return nil, err
	}
	all := make([]bool, len(members))
	copy(all[first:], counted)
	// Loss is judged on the members that do not post: the baseline does not
	// echo a message to its sender.
	for i := 0; i < cfg.Posters; i++ {
		all[i] = false
	}
	posters := make([]poster, cfg.Posters)
	for i := range posters {
		p, err := r.sys.Publisher(ctx, i, members[i], cfg.Room)
		if err != nil {
			return nil, err
		}
		posters[i] = p
	}
	if err := sleepCtx(ctx, time.Second); err != nil {
		return nil, err
	}
	capN := uint64(cfg.Duration.Seconds()*200000) + 1024
	base := r.seq.Load()
	ph := newPhase(len(members), base, capN)
	r.col.cur.Store(ph)
	var postHist histogram
	var errs atomic.Int64
	a := r.sample()
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	profDone := r.prof.cpu(ctx, "write", cfg.Duration)
	r.prof.goroutinesAt(ctx, "write", cfg.Duration/2)
	var wg sync.WaitGroup
	for _, p := range posters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, 64)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				seq := r.seq.Add(1) - 1
				if seq-base >= capN {
					return
				}
				t := time.Now()
				buf = appendMarker(buf[:0], seq, t)
				if err := p.Post(ctx, buf); err != nil {
					if ctx.Err() == nil {
						errs.Add(1)
						r.log.Debug("post failed", "err", err)
					}
					continue
				}
				postHist.Record(time.Since(t))
				ph.Ack(seq)
			}
		}()
	}
	wg.Wait()
	end := time.Now()
	b := r.sample()
	nListen := 0
	for _, ok := range all {
		if ok {
			nListen++
		}
	}
	want := ph.ackCount.Load() * int64(nListen)
	// Posters' own deliveries are counted too, so compare via Lost.
	r.drain(ctx, func() bool { return ph.Lost(all) == 0 }, ph)
	res := r.baseResult()
	res.Profile = profDone()
	res.Subs = len(members)
	res.Publishers = cfg.Posters
	res.ConnectSec = connTime.Seconds()
	res.Duration = end.Sub(start).Seconds()
	res.Acked = ph.ackCount.Load()
	res.Published = int64(r.seq.Load() - base)
	res.PublishErrors = errs.Load()
	res.AckPerSec = float64(res.Acked) / end.Sub(start).Seconds()
	res.PostP50ms = ms(postHist.Quantile(0.50))
	res.PostP95ms = ms(postHist.Quantile(0.95))
	res.PostP99ms = ms(postHist.Quantile(0.99))
	res.PostMaxMs = ms(postHist.Max())
	res.Expected = want
	res.Delivered = ph.delivered.Load()
	res.DeliveredPerSec = float64(res.Delivered) / end.Sub(start).Seconds()
	res.P50ms = ms(ph.hist.Quantile(0.50))
	res.P99ms = ms(ph.hist.Quantile(0.99))
	res.MaxMs = ms(ph.hist.Max())
	res.Lost = ph.Lost(all)
	res.Dups = ph.dups.Load()
	res.Disconnects = r.col.disconnects.Load()
	r.fillProc(&res, a, b)
	r.log.Info("write done", "acked/s", int(res.AckPerSec), "post_p50ms", res.PostP50ms, "post_p99ms", res.PostP99ms,
		"errors", res.PublishErrors, "lost", res.Lost, "server_cpu", int(res.ServerCPUPct))
	return []result{res}, nil
}

// runIdle: N connections that receive nothing; server RSS per connection.
func (r *runner) runIdle(ctx context.Context) ([]result, error) {
	cfg := r.cfg
	users := names(cfg.Prefix+"idle-", cfg.Subs)
	if err := r.sys.Prepare(ctx, users, ""); err != nil {
		return nil, err
	}
	// Let the login burst's garbage be collected before the baseline sample.
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return nil, err
	}
	a := r.sample()
	counted, connTime, connHist, err := r.openAll(ctx, users, "", 0, false)
	n := 0
	for _, ok := range counted {
		if ok {
			n++
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("no connection opened: %w", err)
	}
	if err := sleepCtx(ctx, cfg.Hold); err != nil {
		return nil, err
	}
	b := r.sample()
	res := r.baseResult()
	res.Profile = r.prof.heap(ctx, "idle")
	// The text forms carry runtime.MemStats (StackInuse: goroutine stacks,
	// which a heap profile does not show) and the goroutine count.
	r.prof.fetch(ctx, "/debug/pprof/heap?debug=1", "idle.memstats.txt", 30*time.Second)
	r.prof.fetch(ctx, "/debug/pprof/goroutine?debug=1", "idle.goroutines.txt", 30*time.Second)
	res.Subs = n
	res.ConnectFailed = len(users) - n
	res.ConnectSec = connTime.Seconds()
	res.ConnectP99ms = ms(connHist.Quantile(0.99))
	res.Disconnects = r.col.disconnects.Load()
	r.fillProc(&res, a, b)
	if len(cfg.PIDs) > 0 {
		res.ServerBaseRSSMiB = float64(a.server.RSSKiB) / 1024
		res.RSSPerConnKiB = float64(b.server.RSSKiB-a.server.RSSKiB) / float64(n)
	}
	var mstats runtime.MemStats
	runtime.ReadMemStats(&mstats)
	r.log.Info("idle done", "conns", n, "server_rss_mib", res.ServerRSSMiB, "rss_per_conn_kib", res.RSSPerConnKiB,
		"client_heap_mib", mstats.HeapInuse>>20)
	return []result{res}, nil
}

// runStorm: N newcomers log in, join one room and open streams at once;
// the time until all are ready, and until the event storm quiets down.
func (r *runner) runStorm(ctx context.Context) ([]result, error) {
	cfg := r.cfg
	users := names(fmt.Sprintf("%sst%d-", cfg.Prefix, time.Now().Unix()%100000), cfg.Subs)
	a := r.sample()
	peak := r.peakSampler(ctx)
	profDone := r.prof.cpu(ctx, "storm", 15*time.Second)
	counted, connTime, connHist, err := r.openAll(ctx, users, cfg.Room, 0, true)
	n := 0
	for _, ok := range counted {
		if ok {
			n++
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("no newcomer got in: %w", err)
	}
	readyAt := time.Now()
	eventsAtReady := r.col.events.Load()
	// Quiet: no event on any connection for cfg.Quiet (bounded by the
	// connect wait), i.e. the server finished announcing everyone.
	limit := readyAt.Add(cfg.ConnectWait)
	for time.Now().Before(limit) && ctx.Err() == nil {
		if time.Since(time.Unix(0, r.col.lastEventNs.Load())) >= cfg.Quiet {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	quietAt := time.Unix(0, r.col.lastEventNs.Load())
	if quietAt.Before(readyAt) {
		quietAt = readyAt
	}
	b := r.sample()
	res := r.baseResult()
	res.Profile = profDone()
	res.Subs = n
	res.ConnectFailed = len(users) - n
	res.ConnectSec = connTime.Seconds()
	res.ConnectP99ms = ms(connHist.Quantile(0.99))
	res.QuietSec = quietAt.Sub(readyAt.Add(-connTime)).Seconds()
	res.ConnectRetry = r.col.earlyRetries.Load()
	res.EventsAtReady = eventsAtReady
	res.Events = r.col.events.Load()
	res.Disconnects = r.col.disconnects.Load()
	r.fillProc(&res, a, b)
	if p := peak(); p > 0 {
		res.ServerPeakRSSMiB = float64(p) / 1024
	}
	r.log.Info("storm done", "ready", n, "all_ready_s", res.ConnectSec, "quiet_s", res.QuietSec,
		"events", res.Events, "events_per_user", res.Events/int64(n))
	return []result{res}, nil
}
