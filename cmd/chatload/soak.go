package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The soak: thousands of users churn — open a stream, read, drop it without
// closing (a reset, or a client that stops reading and vanishes), reconnect
// with Last-Event-ID — while they post, and an attacker holds idle sockets
// from one address and floods posts on one account from another, all
// against a server with its abuse limits on. Then the load stops, the
// server is given time to settle, and the run checks what a server on the
// internet must show after such a day: its goroutines, descriptors and
// heap back near where they were, legitimate users served throughout, the
// attacker held by the limits, and every acknowledged message in every
// user's resumed streams.

// soakConfig is what a soak is told.
type soakConfig struct {
	Server      string   // the ssechat binary to start; "" targets Addr
	ServerFlags []string // more flags for it
	Addr        string   // host:port of a running server (without Server)
	MetricsURL  string   // its /metrics (--metrics-addr)
	PprofURL    string   // its --pprof listener, to collect garbage before reading the heap; optional
	Dir         string   // the started server's database and log

	Users    int
	PerIP    int // users sharing one source address
	RoomSize int
	Rate     float64 // legitimate messages a second, all users together
	Duration time.Duration
	LifeMin  time.Duration // a stream lives this long at least before it drops
	LifeMax  time.Duration
	Vanish   float64       // share of the drops where the client stops reading and holds the socket
	HoldMax  time.Duration // how long a vanished client holds its socket, at most
	Conc     int           // logins, joins and final resumes in flight at once

	IdleIP, FloodIP string
	AttackIdle      int           // sockets the attacker tries to hold
	Redial          time.Duration // the attacker's pause between a closed socket and the next
	Flooders        int
	FloodRate       float64 // posts a second, all flooders together; 0: as fast as answered

	// The server's limits: passed to a started server, and what the
	// checks expect of a running one.
	MaxConnsPerIP int
	MessageRate   float64
	MessageBurst  int

	Settle       time.Duration // bound on the wait for the server to settle
	SlackG       int           // goroutines allowed above the baseline afterwards
	SlackFD      int           // descriptors allowed above the baseline afterwards
	SlackHeapMiB float64       // heap in use allowed above the baseline afterwards (after a GC)
	MaxErrPct    float64       // legitimate requests that may fail, in %
	Password     string
	Out          string
}

// soakReport is a soak's figures; one JSON line of them goes to -out.
type soakReport struct {
	Time     string  `json:"time"`
	Users    int     `json:"users"`
	Duration float64 `json:"duration_s"`

	Base  serverStats `json:"baseline"`
	Peak  serverStats `json:"peak"`
	After serverStats `json:"after"`
	// SettleSec is how long after the load stopped (the final resumes
	// included) the goroutines and descriptors were back within their
	// slack (or the bound, if never).
	SettleSec float64 `json:"settle_s"`

	StreamsOpened int64            `json:"streams_opened"`
	Drops         int64            `json:"drops_reset"`
	Vanished      int64            `json:"drops_vanished"`
	CutByServer   int64            `json:"cut_by_server"`
	ReadyP50ms    float64          `json:"ready_p50_ms"`
	ReadyP99ms    float64          `json:"ready_p99_ms"`
	ReadyMaxMs    float64          `json:"ready_max_ms"`
	Posted        int64            `json:"posted"`
	Acked         int64            `json:"acked"`
	PostP50ms     float64          `json:"post_p50_ms"`
	PostP99ms     float64          `json:"post_p99_ms"`
	PostMaxMs     float64          `json:"post_max_ms"`
	DelivP99ms    float64          `json:"delivery_p99_ms"`
	LegitRequests int64            `json:"legit_requests"`
	LegitErrors   map[string]int64 `json:"legit_errors"`

	FinalResumes int64 `json:"final_resumes"`
	Resets       int64 `json:"resets"`
	Missing      int64 `json:"missing"` // acknowledged messages absent from a user's streams
	Dups         int64 `json:"dups"`

	IdleRefused     int64            `json:"attack_idle_refused"`  // closed unread within a second
	IdleTimedOut    int64            `json:"attack_idle_timedout"` // closed by the server's timeouts
	IdleMaxOpen     int64            `json:"attack_idle_max_open"` // most sockets open at once, client side
	RefusedByServer float64          `json:"refused_by_server"`    // ssechat_connections_refused_total, during the run
	FloodOK         int64            `json:"flood_ok"`
	Flood429        int64            `json:"flood_429"`
	FloodOther      map[string]int64 `json:"flood_other"`
	FloodAllowed    int64            `json:"flood_allowed"` // what the message limit lets through in the time

	Failures []string `json:"failures"`
}

// serverStats is what the server's metrics say of its resources.
type serverStats struct {
	Goroutines float64 `json:"goroutines"`
	FDs        float64 `json:"fds"`
	RSSMiB     float64 `json:"rss_mib"`
	HeapMiB    float64 `json:"heap_inuse_mib"`
	Streams    float64 `json:"streams_open"`
	Refused    float64 `json:"-"`
}

func soakMain(args []string) error {
	cfg, timeout, verbose, err := parseSoak(args)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	rep, err := runSoak(ctx, cfg, log)
	if rep != nil {
		rep.write(os.Stdout, cfg)
		if cfg.Out != "" {
			if werr := appendJSON(cfg.Out, rep); werr != nil {
				return errors.Join(err, werr)
			}
		}
	}
	return err
}

// parseSoak reads the soak's flags.
func parseSoak(args []string) (cfg soakConfig, timeout time.Duration, verbose bool, err error) {
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	var serverFlags string
	fs.StringVar(&cfg.Server, "server", "", "ssechat binary to start for the soak (with its limits on, a database in -dir, metrics and pprof on free loopback ports); empty: target -addr")
	fs.StringVar(&serverFlags, "server-flags", "", "more flags for the started server, space-separated")
	fs.StringVar(&cfg.Addr, "addr", "", "host:port of a running server (loopback), instead of -server")
	fs.StringVar(&cfg.MetricsURL, "metrics", "", "its metrics URL (http://127.0.0.1:9090/metrics), with -addr")
	fs.StringVar(&cfg.PprofURL, "server-pprof", "", "its pprof listener (http://127.0.0.1:6060), with -addr: the heap is read after a garbage collection")
	fs.StringVar(&cfg.Dir, "dir", "", "directory of the started server's database and log (default: a new temporary one)")
	fs.IntVar(&cfg.Users, "users", 2000, "legitimate users, each holding one churning stream")
	fs.IntVar(&cfg.PerIP, "users-per-ip", 8, "legitimate users sharing one loopback source address (127.10.x.y)")
	fs.IntVar(&cfg.RoomSize, "room-size", 50, "users per room")
	fs.Float64Var(&cfg.Rate, "rate", 100, "legitimate messages a second, all users together")
	fs.DurationVar(&cfg.Duration, "duration", 3*time.Minute, "how long the load runs")
	fs.DurationVar(&cfg.LifeMin, "life-min", 5*time.Second, "a stream lives at least this long before it drops")
	fs.DurationVar(&cfg.LifeMax, "life-max", 30*time.Second, "a stream lives at most this long before it drops")
	fs.Float64Var(&cfg.Vanish, "vanish", 0.3, "share of the drops where the client stops reading and holds its socket a while (the others reset it)")
	fs.DurationVar(&cfg.HoldMax, "hold-max", 10*time.Second, "longest a vanished client holds its socket before resetting it")
	fs.IntVar(&cfg.Conc, "concurrency", 100, "logins, joins and final resumes in flight at once")
	fs.StringVar(&cfg.IdleIP, "attack-idle-ip", "127.1.0.1", "the attacker's address holding idle sockets")
	fs.StringVar(&cfg.FloodIP, "attack-flood-ip", "127.1.0.2", "the attacker's address flooding posts")
	fs.IntVar(&cfg.AttackIdle, "attack-idle", -1, "idle sockets the attacker tries to hold (default: -max-conns-per-ip + 64)")
	fs.DurationVar(&cfg.Redial, "attack-redial", 100*time.Millisecond, "the attacker's pause before reopening a closed socket")
	fs.IntVar(&cfg.Flooders, "flooders", 4, "the attacker's concurrent posters, on one account")
	fs.Float64Var(&cfg.FloodRate, "flood-rate", 200, "the attacker's posts a second (0: as fast as answered)")
	fs.IntVar(&cfg.MaxConnsPerIP, "max-conns-per-ip", 256, "the server's --max-conns-per-ip (given to a started server)")
	fs.Float64Var(&cfg.MessageRate, "message-rate", 10, "the server's --message-rate (given to a started server)")
	fs.IntVar(&cfg.MessageBurst, "message-burst", 20, "the server's --message-burst (given to a started server)")
	fs.DurationVar(&cfg.Settle, "settle", time.Minute, "bound on the wait for goroutines and descriptors to come back after the load")
	fs.IntVar(&cfg.SlackG, "slack-goroutines", 10, "goroutines allowed above the baseline afterwards")
	fs.IntVar(&cfg.SlackFD, "slack-fds", 10, "descriptors allowed above the baseline afterwards")
	fs.Float64Var(&cfg.SlackHeapMiB, "slack-heap", 32, "MiB of heap in use allowed above the baseline afterwards (both read after a garbage collection when pprof is reachable)")
	fs.Float64Var(&cfg.MaxErrPct, "max-errors", 0.1, "legitimate requests that may fail, in % (a 429 to a legitimate user always fails the soak)")
	fs.StringVar(&cfg.Password, "password", "soak-password", "password of the soak's accounts")
	fs.StringVar(&cfg.Out, "out", "", "append the figures as one JSON line to this file")
	fs.BoolVar(&verbose, "v", false, "debug logging")
	fs.DurationVar(&timeout, "timeout", 0, "hard bound on the whole run (default: duration + 10 minutes)")
	if err = fs.Parse(args); err != nil {
		return cfg, 0, false, err
	}
	cfg.ServerFlags = strings.Fields(serverFlags)
	if cfg.AttackIdle < 0 {
		cfg.AttackIdle = cfg.MaxConnsPerIP + 64
	}
	if timeout == 0 {
		timeout = cfg.Duration + 10*time.Minute
	}
	return cfg, timeout, verbose, nil
}

// soak is one run's state.
type soak struct {
	cfg   soakConfig
	log   *slog.Logger
	o     *ours
	col   *collector
	setup *http.Client // logins and joins: a new connection each, from the user's address
	users []*soakUser
	flood *soakUser

	ph      *phase
	seqRoom []int32 // the room of each message, by seq - ph.base
	seq     atomic.Uint64

	readyHist, postHist histogram
	requests            atomic.Int64
	errs                counts
	opened, drops       atomic.Int64
	vanished, cut       atomic.Int64
	held                sync.WaitGroup // vanished sockets still held

	idleRefused, idleTimedOut atomic.Int64
	idleOpen, idleMaxOpen     atomic.Int64
	floodOK, flood429         atomic.Int64
	floodOther                counts
}

// soakUser is one account, talking from its own source address.
type soakUser struct {
	i      int
	name   string
	room   int
	ip     net.IP
	p      sseParser // its stream's position, across reconnects
	poster *oursPoster
}

func (u *soakUser) src(ctx context.Context) context.Context { return withSource(ctx, u.ip) }

func roomName(i int) string { return "soak-" + strconv.Itoa(i) }

// userIP is the source address of the k-th group of users: 127.10.x.y.
func userIP(k int) net.IP { return net.IPv4(127, 10, byte(k/250), byte(k%250+1)) }

// counts is a small set of named counters (errors by kind).
type counts struct {
	mu sync.Mutex
	m  map[string]int64
}

func (c *counts) Add(k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]int64{}
	}
	c.m[k]++
}

func (c *counts) Snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.m))
	for k, v := range c.m {
		out[k] = v
	}
	return out
}

// errKind names an error for the counts: "429", "503", "conn", "timeout".
func errKind(err error) string {
	var se *httpStatusError
	var ne net.Error
	switch {
	case errors.As(err, &se):
		return strconv.Itoa(se.Code)
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "conn"
}

func runSoak(ctx context.Context, cfg soakConfig, log *slog.Logger) (*soakReport, error) {
	if cfg.Users < 1 || cfg.PerIP < 1 || cfg.RoomSize < 1 || cfg.Rate <= 0 || cfg.LifeMax < cfg.LifeMin || cfg.LifeMin <= 0 {
		return nil, errors.New("soak: -users, -users-per-ip, -room-size, -rate and -life-min must be positive, -life-max ≥ -life-min")
	}
	if _, err := raiseNoFile(); err != nil {
		log.Warn("cannot raise RLIMIT_NOFILE", "err", err)
	}
	if cfg.Server != "" {
		srv, err := startSoakServer(ctx, cfg, log)
		if err != nil {
			return nil, err
		}
		defer srv.stop(log)
		cfg.Addr, cfg.MetricsURL, cfg.PprofURL = srv.addr, srv.metrics, srv.pprof
	}
	if cfg.Addr == "" || cfg.MetricsURL == "" {
		return nil, errors.New("soak: give -server, or -addr and -metrics")
	}
	if err := checkLoopback(cfg.Addr); err != nil {
		return nil, err
	}
	col := &collector{}
	sess, _ := loadSessions("")
	dial := newDialers(1)
	s := &soak{
		cfg: cfg, log: log, col: col,
		o: newOurs([]string{cfg.Addr}, cfg.Password, dial, sess, col, log, cfg.Conc, false, 0, cfg.Users),
		setup: &http.Client{Timeout: time.Minute, Transport: &http.Transport{
			DialContext: dial.DialContext, DisableKeepAlives: true,
		}},
	}
	for i := range cfg.Users {
		s.users = append(s.users, &soakUser{i: i, name: fmt.Sprintf("sk-%d", i), room: i / cfg.RoomSize, ip: userIP(i / cfg.PerIP)})
	}
	s.flood = &soakUser{i: -1, name: "sk-flood", room: 0, ip: net.ParseIP(cfg.FloodIP)}
	if s.flood.ip == nil || net.ParseIP(cfg.IdleIP) == nil {
		return nil, errors.New("soak: bad -attack-idle-ip or -attack-flood-ip")
	}
	rep := &soakReport{Time: time.Now().UTC().Format(time.RFC3339), Users: cfg.Users, Duration: cfg.Duration.Seconds()}

	log.Info("soak: logging users in", "users", cfg.Users, "rooms", (cfg.Users+cfg.RoomSize-1)/cfg.RoomSize)
	if err := s.prepare(ctx); err != nil {
		return nil, err
	}
	base, err := s.quietStats(ctx)
	if err != nil {
		return nil, err
	}
	rep.Base = base
	log.Info("soak: baseline", "goroutines", base.Goroutines, "fds", base.FDs, "rss_mib", int(base.RSSMiB), "heap_mib", int(base.HeapMiB))

	// Every message posted from now on is owed to every member of its
	// room: each user's first stream is ready before the first post.
	capN := uint64(cfg.Rate*cfg.Duration.Seconds()) + 1024
	s.ph = newPhase(cfg.Users, 0, capN)
	s.seqRoom = make([]int32, capN)
	col.cur.Store(s.ph)

	load, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var loops sync.WaitGroup
	first := make(chan error, cfg.Users)
	for _, u := range s.users {
		loops.Add(1)
		go func() {
			defer loops.Done()
			s.churn(load, u, first)
		}()
	}
	log.Info("soak: opening the first streams")
	for range cfg.Users {
		select {
		case err := <-first:
			if err != nil {
				stopLoad()
				loops.Wait()
				return nil, fmt.Errorf("soak: a first stream: %w", err)
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}

	log.Info("soak: load and attack", "duration", cfg.Duration, "rate", cfg.Rate, "attack_idle", cfg.AttackIdle, "flood_rate", cfg.FloodRate)
	start := time.Now()
	peak := s.sampler(load, &rep.Peak)
	var attack sync.WaitGroup
	for slot := range cfg.AttackIdle {
		attack.Add(1)
		go func() {
			defer attack.Done()
			s.holdIdle(load, slot)
		}()
	}
	floodPoster, err := s.o.Publisher(s.flood.src(ctx), -1, s.flood.name, roomName(s.flood.room))
	if err != nil {
		return nil, err
	}
	for range cfg.Flooders {
		attack.Add(1)
		go func() {
			defer attack.Done()
			s.floodPosts(load, floodPoster.(*oursPoster), start.Add(cfg.Duration))
		}()
	}
	s.post(load, start, start.Add(cfg.Duration))
	elapsed := time.Since(start)
	stopLoad()
	stopped := time.Now()
	loops.Wait()
	attack.Wait()
	s.held.Wait()
	peak()
	for _, u := range s.users {
		if u.poster != nil {
			u.poster.Close()
		}
	}
	floodPoster.(*oursPoster).Close()
	log.Info("soak: load stopped; resuming every user's stream once more")

	resets0 := col.resets.Load()
	rep.FinalResumes = s.finalResumes(ctx)
	rep.Resets = col.resets.Load()
	if n := col.resets.Load() - resets0; n > 0 {
		log.Warn("soak: final resumes reset", "n", n)
	}
	rep.Missing = s.missing()
	rep.Dups = s.ph.dups.Load()

	log.Info("soak: waiting for the server to settle", "bound", cfg.Settle)
	after, settled, err := s.settle(ctx, base)
	if err != nil {
		return nil, err
	}
	rep.After, rep.SettleSec = after, settled.Sub(stopped).Seconds()
	rep.RefusedByServer = after.Refused - base.Refused

	rep.StreamsOpened, rep.Drops, rep.Vanished, rep.CutByServer = s.opened.Load(), s.drops.Load(), s.vanished.Load(), s.cut.Load()
	rep.ReadyP50ms, rep.ReadyP99ms, rep.ReadyMaxMs = ms(s.readyHist.Quantile(.5)), ms(s.readyHist.Quantile(.99)), ms(s.readyHist.Max())
	rep.Posted, rep.Acked = int64(s.seq.Load()), s.ph.ackCount.Load()
	rep.PostP50ms, rep.PostP99ms, rep.PostMaxMs = ms(s.postHist.Quantile(.5)), ms(s.postHist.Quantile(.99)), ms(s.postHist.Max())
	rep.DelivP99ms = ms(s.ph.hist.Quantile(.99))
	rep.LegitRequests, rep.LegitErrors = s.requests.Load(), s.errs.Snapshot()
	rep.IdleRefused, rep.IdleTimedOut, rep.IdleMaxOpen = s.idleRefused.Load(), s.idleTimedOut.Load(), s.idleMaxOpen.Load()
	rep.FloodOK, rep.Flood429, rep.FloodOther = s.floodOK.Load(), s.flood429.Load(), s.floodOther.Snapshot()
	rep.FloodAllowed = int64(cfg.MessageBurst) + int64(cfg.MessageRate*elapsed.Seconds()+0.5)
	rep.Failures = rep.check(cfg)
	if len(rep.Failures) > 0 {
		return rep, fmt.Errorf("soak failed: %s", strings.Join(rep.Failures, "; "))
	}
	return rep, nil
}

// prepare logs every user in (registering them) and joins their room,
// each from its own address, as does the flooding attacker.
func (s *soak) prepare(ctx context.Context) error {
	all := append(append([]*soakUser{}, s.users...), s.flood)
	failed, err := forEach(ctx, len(all), s.cfg.Conc, func(ctx context.Context, i int) error {
		u := all[i]
		ctx = u.src(ctx)
		body, _ := json.Marshal(map[string]string{"username": u.name, "password": s.cfg.Password})
		var out struct{ Token string }
		ep := s.o.at(u.name)
		if err := s.o.call(ctx, s.setup, ep, "", http.MethodPost, "/api/login", body, http.StatusOK, &out); err != nil {
			return err
		}
		s.o.sess.Set(u.name, out.Token)
		return s.o.call(ctx, s.setup, ep, out.Token, http.MethodPost, "/api/rooms/"+roomName(u.room)+"/join", []byte("{}"), http.StatusOK, nil)
	})
	if err != nil {
		return fmt.Errorf("soak: %d of %d users could not log in and join: %w", failed, len(all), err)
	}
	return nil
}

// readyTimeout bounds a legitimate stream's wait for `ready`.
const readyTimeout = 15 * time.Second

// churn is one user's life: open the stream (resuming), read it a while,
// drop it without closing — a reset, or stop reading and vanish, the
// socket held open a while — and open the next one at once. The first
// stream's outcome goes to first.
func (s *soak) churn(ctx context.Context, u *soakUser, first chan<- error) {
	rng := rand.New(rand.NewPCG(uint64(u.i), 0x50a6))
	started := false
	failures := 0
	for ctx.Err() == nil {
		t0 := time.Now()
		octx, cancel := context.WithTimeout(u.src(ctx), readyTimeout)
		sc, err := s.o.dialStream(octx, s.cfg.Addr, s.o.sess.Get(u.name), u.p.LastID())
		var done <-chan error
		if err == nil {
			done, err = s.awaitReady(octx, sc, u, t0)
		}
		cancel()
		if ctx.Err() != nil {
			if sc != nil {
				sc.conn.Close()
			}
			return
		}
		if started {
			s.requests.Add(1)
		}
		if err != nil {
			s.log.Debug("soak: stream failed", "user", u.name, "err", err)
			if !started {
				// Before the load, a few retries; a server that cannot seat
				// its users at all fails the soak.
				if failures++; failures > maxEarlyRetries {
					first <- err
					return
				}
			} else {
				s.errs.Add("stream " + errKind(err))
			}
			if sleepCtx(ctx, 500*time.Millisecond) != nil {
				return
			}
			continue
		}
		if !started {
			started = true
			first <- nil
		}
		s.opened.Add(1)
		if !s.live(ctx, u, sc, done, rng) {
			return
		}
	}
}

// awaitReady reads sc in the background and returns once its `ready`
// came; the reader goes on, and done says when it ended.
func (s *soak) awaitReady(ctx context.Context, sc *streamConn, u *soakUser, t0 time.Time) (done <-chan error, err error) {
	ready := make(chan struct{})
	var once sync.Once
	ended := make(chan error, 1)
	go func() {
		ended <- s.o.readEvents(sc, u.i, &u.p, func() { once.Do(func() { close(ready) }) })
	}()
	select {
	case <-ready:
		s.readyHist.Record(time.Since(t0))
		return ended, nil
	case err := <-ended:
		sc.conn.Close()
		return nil, err
	case <-ctx.Done():
		sc.conn.Close()
		<-ended
		return nil, ctx.Err()
	}
}

// live lets the stream run its life, then drops it. It returns false when
// the load is over.
func (s *soak) live(ctx context.Context, u *soakUser, sc *streamConn, done <-chan error, rng *rand.Rand) bool {
	life := s.cfg.LifeMin + time.Duration(rng.Int64N(int64(s.cfg.LifeMax-s.cfg.LifeMin)+1))
	t := time.NewTimer(life)
	defer t.Stop()
	select {
	case <-t.C:
	case err := <-done:
		// The server ended it (a slow consumer cut off, say): reconnect.
		s.cut.Add(1)
		sc.conn.Close()
		s.log.Debug("soak: stream ended by the server", "user", u.name, "err", err)
		return true
	case <-ctx.Done():
		sc.conn.Close()
		<-done
		return false
	}
	if rng.Float64() < s.cfg.Vanish {
		// Stop reading, keep the socket: what the server sees of a phone
		// that lost its network, until the client gives up.
		_ = sc.conn.SetReadDeadline(time.Now())
		<-done
		s.vanished.Add(1)
		hold := time.Duration(rng.Int64N(int64(s.cfg.HoldMax) + 1))
		s.held.Add(1)
		go func() {
			defer s.held.Done()
			_ = sleepCtx(ctx, hold)
			reset(sc.conn)
		}()
		return true
	}
	reset(sc.conn)
	<-done
	s.drops.Add(1)
	return true
}

// reset closes c with a TCP reset rather than a FIN: no goodbye at all.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// post publishes at the configured rate from start to end, open loop,
// each message from one user (in turn, shuffled) to their room.
func (s *soak) post(ctx context.Context, start, end time.Time) {
	order := rand.New(rand.NewPCG(1, 2)).Perm(len(s.users))
	interval := time.Duration(float64(time.Second) / s.cfg.Rate)
	sem := make(chan struct{}, 256)
	var inflight sync.WaitGroup
	defer inflight.Wait()
	for k := 0; ; k++ {
		due := start.Add(time.Duration(k) * interval)
		if !due.Before(end) || sleepCtx(ctx, time.Until(due)) != nil {
			return
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		seq := s.seq.Add(1) - 1
		if seq >= s.ph.capN {
			return
		}
		u := s.users[order[k%len(order)]]
		if u.poster == nil {
			p, err := s.o.Publisher(ctx, -1, u.name, roomName(u.room))
			if err != nil { // no token: the setup logged everyone in
				s.errs.Add("post " + errKind(err))
				<-sem
				continue
			}
			u.poster = p.(*oursPoster)
		}
		s.seqRoom[seq] = int32(u.room)
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			defer func() { <-sem }()
			sent := time.Now()
			err := u.poster.Post(u.src(ctx), appendMarker(make([]byte, 0, 48), seq, sent))
			if ctx.Err() != nil {
				return
			}
			s.requests.Add(1)
			if err != nil {
				s.errs.Add("post " + errKind(err))
				s.log.Debug("soak: post failed", "user", u.name, "err", err)
				return
			}
			s.postHist.Record(time.Since(sent))
			s.ph.Ack(seq)
		}()
	}
}

// holdIdle is one of the attacker's socket slots: it opens a connection
// from the idle address and holds it, sending nothing (odd slots send one
// request and then idle on the keep-alive connection), until the server
// closes it; then it opens the next.
func (s *soak) holdIdle(ctx context.Context, slot int) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(s.cfg.IdleIP)}}
	for ctx.Err() == nil {
		t0 := time.Now()
		c, err := d.DialContext(ctx, "tcp", s.cfg.Addr)
		if err != nil {
			if ctx.Err() == nil {
				s.idleRefused.Add(1) // the reset beat the connect to its end
			}
			if sleepCtx(ctx, s.cfg.Redial) != nil {
				return
			}
			continue
		}
		if n := s.idleOpen.Add(1); n > s.idleMaxOpen.Load() {
			s.idleMaxOpen.Store(n) // racy max: a figure, not a check
		}
		stop := context.AfterFunc(ctx, func() { c.Close() })
		if slot%2 == 1 {
			_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: soak\r\n\r\n")
		}
		n, _ := io.Copy(io.Discard, c)
		stop()
		c.Close()
		s.idleOpen.Add(-1)
		if ctx.Err() != nil {
			return
		}
		if n == 0 && time.Since(t0) < time.Second {
			s.idleRefused.Add(1)
		} else {
			s.idleTimedOut.Add(1)
		}
		if sleepCtx(ctx, s.cfg.Redial) != nil {
			return
		}
	}
}

// floodPosts posts on the attacker's one account until end, paced at its
// share of -flood-rate.
func (s *soak) floodPosts(ctx context.Context, p *oursPoster, end time.Time) {
	var gap time.Duration
	if s.cfg.FloodRate > 0 {
		gap = time.Duration(float64(time.Second) * float64(s.cfg.Flooders) / s.cfg.FloodRate)
	}
	next := time.Now()
	for k := 0; time.Now().Before(end); k++ {
		if gap > 0 {
			next = next.Add(gap)
			if sleepCtx(ctx, time.Until(next)) != nil {
				return
			}
		}
		err := p.Post(s.flood.src(ctx), []byte("flood "+strconv.Itoa(k)))
		if ctx.Err() != nil {
			return
		}
		var se *httpStatusError
		switch {
		case err == nil:
			s.floodOK.Add(1)
		case errors.As(err, &se) && se.Code == http.StatusTooManyRequests:
			s.flood429.Add(1)
		default:
			s.floodOther.Add(errKind(err))
		}
	}
}

// finalResumes resumes every user's stream once more from where it
// stopped and reads it to `ready`: the backlog before it holds every
// message acknowledged during the load.
func (s *soak) finalResumes(ctx context.Context) int64 {
	var ok atomic.Int64
	_, err := forEach(ctx, len(s.users), s.cfg.Conc, func(ctx context.Context, i int) error {
		u := s.users[i]
		octx, cancel := context.WithTimeout(u.src(ctx), time.Minute)
		defer cancel()
		sc, err := s.o.dialStream(octx, s.cfg.Addr, s.o.sess.Get(u.name), u.p.LastID())
		if err != nil {
			return err
		}
		defer sc.conn.Close()
		stop := context.AfterFunc(octx, func() { sc.conn.Close() })
		defer stop()
		ready := false
		_ = s.o.readEvents(sc, u.i, &u.p, func() { ready = true; sc.conn.Close() })
		if !ready {
			return fmt.Errorf("final resume of %s: no ready", u.name)
		}
		ok.Add(1)
		return nil
	})
	if err != nil {
		s.log.Warn("soak: final resumes failed", "err", err)
	}
	return ok.Load()
}

// missing counts, over every user, the acknowledged messages of their room
// that none of their streams delivered.
func (s *soak) missing() int64 {
	byRoom := map[int32][]uint64{}
	for seq := uint64(0); seq < s.seq.Load() && seq < s.ph.capN; seq++ {
		if s.ph.acked[seq/64]&(1<<(seq%64)) != 0 {
			byRoom[s.seqRoom[seq]] = append(byRoom[s.seqRoom[seq]], seq)
		}
	}
	var n int64
	for _, u := range s.users {
		row := s.ph.seen[u.i*s.ph.words : (u.i+1)*s.ph.words]
		for _, seq := range byRoom[int32(u.room)] {
			if row[seq/64]&(1<<(seq%64)) == 0 {
				n++
			}
		}
	}
	return n
}

// sampler scrapes the server every second until the returned func is
// called, keeping the peaks in p.
func (s *soak) sampler(ctx context.Context, p *serverStats) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			if st, err := scrapeStats(ctx, s.cfg.MetricsURL); err == nil {
				p.Goroutines = max(p.Goroutines, st.Goroutines)
				p.FDs = max(p.FDs, st.FDs)
				p.RSSMiB = max(p.RSSMiB, st.RSSMiB)
				p.HeapMiB = max(p.HeapMiB, st.HeapMiB)
				p.Streams = max(p.Streams, st.Streams)
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
	return func() { close(done); <-stopped }
}

// quietStats waits for the server's goroutines and descriptors to stop
// moving (the setup's connections closing), then reads its resources
// after a garbage collection.
func (s *soak) quietStats(ctx context.Context) (serverStats, error) {
	var prev serverStats
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := scrapeStats(ctx, s.cfg.MetricsURL)
		if err != nil {
			return st, err
		}
		if (st.Goroutines == prev.Goroutines && st.FDs == prev.FDs) || time.Now().After(deadline) {
			break
		}
		prev = st
		if err := sleepCtx(ctx, time.Second); err != nil {
			return st, err
		}
	}
	return s.statsAfterGC(ctx)
}

// settle polls until the goroutines and descriptors are back within their
// slack of the baseline, or the bound passes; then reads the resources
// after a garbage collection.
func (s *soak) settle(ctx context.Context, base serverStats) (serverStats, time.Time, error) {
	deadline := time.Now().Add(s.cfg.Settle)
	for {
		st, err := scrapeStats(ctx, s.cfg.MetricsURL)
		if err != nil {
			return st, time.Now(), err
		}
		if (st.Goroutines <= base.Goroutines+float64(s.cfg.SlackG) && st.FDs <= base.FDs+float64(s.cfg.SlackFD)) ||
			time.Now().After(deadline) {
			break
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return st, time.Now(), err
		}
	}
	at := time.Now()
	st, err := s.statsAfterGC(ctx)
	return st, at, err
}

// statsAfterGC asks the server's pprof for a heap profile with a garbage
// collection first (gc=1), so that the heap read next holds live data
// only, then scrapes.
func (s *soak) statsAfterGC(ctx context.Context) (serverStats, error) {
	if s.cfg.PprofURL != "" {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if req, err := http.NewRequestWithContext(rctx, "GET", s.cfg.PprofURL+"/debug/pprof/heap?gc=1", nil); err == nil {
			if resp, err := http.DefaultClient.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			} else {
				s.log.Warn("soak: no garbage collection through pprof", "err", err)
			}
		}
	}
	return scrapeStats(ctx, s.cfg.MetricsURL)
}

// scrapeStats reads the few series the soak follows from the metrics.
func scrapeStats(ctx context.Context, url string) (serverStats, error) {
	var st serverStats
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return st, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return st, err
	}
	return parseStats(string(body)), nil
}

// parseStats picks the soak's series out of the Prometheus text format.
func parseStats(text string) serverStats {
	var st serverStats
	for _, line := range strings.Split(text, "\n") {
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		switch line[:i] {
		case "go_goroutines":
			st.Goroutines = v
		case "process_open_fds":
			st.FDs = v
		case "process_resident_memory_bytes":
			st.RSSMiB = v / (1 << 20)
		case "go_memstats_heap_inuse_bytes":
			st.HeapMiB = v / (1 << 20)
		case "ssechat_streams_open":
			st.Streams = v
		case `ssechat_connections_refused_total{reason="per_ip"}`:
			st.Refused = v
		}
	}
	return st
}

// check lists what the run shows wrong.
func (r *soakReport) check(cfg soakConfig) []string {
	var bad []string
	if r.Missing > 0 {
		bad = append(bad, fmt.Sprintf("%d acknowledged messages missing from resumed streams", r.Missing))
	}
	if r.Dups > 0 {
		bad = append(bad, fmt.Sprintf("%d messages delivered twice", r.Dups))
	}
	if r.FinalResumes < int64(r.Users) {
		bad = append(bad, fmt.Sprintf("%d of %d final resumes failed", int64(r.Users)-r.FinalResumes, r.Users))
	}
	if d := r.After.Goroutines - r.Base.Goroutines; d > float64(cfg.SlackG) {
		bad = append(bad, fmt.Sprintf("goroutines %.0f after, %.0f before", r.After.Goroutines, r.Base.Goroutines))
	}
	if d := r.After.FDs - r.Base.FDs; d > float64(cfg.SlackFD) {
		bad = append(bad, fmt.Sprintf("descriptors %.0f after, %.0f before", r.After.FDs, r.Base.FDs))
	}
	if d := r.After.HeapMiB - r.Base.HeapMiB; d > cfg.SlackHeapMiB {
		bad = append(bad, fmt.Sprintf("heap in use %.1f MiB after, %.1f before", r.After.HeapMiB, r.Base.HeapMiB))
	}
	var errs int64
	for k, n := range r.LegitErrors {
		errs += n
		if strings.HasSuffix(k, " 429") {
			bad = append(bad, fmt.Sprintf("legitimate users refused by a limit: %d × %s", n, k))
		}
	}
	if r.LegitRequests == 0 || float64(errs) > float64(r.LegitRequests)*cfg.MaxErrPct/100 {
		bad = append(bad, fmt.Sprintf("%d of %d legitimate requests failed", errs, r.LegitRequests))
	}
	if cfg.Flooders > 0 {
		if r.Flood429 == 0 {
			bad = append(bad, "the flood was never refused 429")
		}
		if r.FloodOK > r.FloodAllowed+2 {
			bad = append(bad, fmt.Sprintf("the flood got %d posts through, the limit allows %d", r.FloodOK, r.FloodAllowed))
		}
	}
	if cfg.AttackIdle > cfg.MaxConnsPerIP && cfg.MaxConnsPerIP > 0 && r.RefusedByServer == 0 {
		bad = append(bad, "the idle attacker was never refused a connection")
	}
	return bad
}

// write prints the report as markdown for BENCHMARKS.md.
func (r *soakReport) write(w io.Writer, cfg soakConfig) {
	fmt.Fprintf(w, "\n### Soak: %d users × %s, %.0f msg/s; attacker: %d idle sockets, a flood of %.0f posts/s\n\n",
		r.Users, time.Duration(r.Duration*float64(time.Second)), cfg.Rate, cfg.AttackIdle, cfg.FloodRate)
	fmt.Fprintln(w, "| server | baseline | peak | after |")
	fmt.Fprintln(w, "|---|---|---|---|")
	fmt.Fprintf(w, "| goroutines | %.0f | %.0f | %.0f |\n", r.Base.Goroutines, r.Peak.Goroutines, r.After.Goroutines)
	fmt.Fprintf(w, "| open descriptors | %.0f | %.0f | %.0f |\n", r.Base.FDs, r.Peak.FDs, r.After.FDs)
	fmt.Fprintf(w, "| heap in use (MiB) | %.1f | %.1f | %.1f |\n", r.Base.HeapMiB, r.Peak.HeapMiB, r.After.HeapMiB)
	fmt.Fprintf(w, "| RSS (MiB) | %.1f | %.1f | %.1f |\n", r.Base.RSSMiB, r.Peak.RSSMiB, r.After.RSSMiB)
	fmt.Fprintf(w, "| streams open | %.0f | %.0f | %.0f |\n\n", r.Base.Streams, r.Peak.Streams, r.After.Streams)
	fmt.Fprintf(w, "- back within the slack %.1f s after the load stopped, the final resumes included (baseline and after read after a garbage collection)\n", r.SettleSec)
	fmt.Fprintf(w, "- legitimate: %d streams opened (%d reset, %d vanished, %d cut by the server), ready p50 %.1f / p99 %.1f / max %.1f ms; "+
		"%d of %d posts acknowledged, p50 %.1f / p99 %.1f / max %.1f ms, delivery p99 %.1f ms; %d requests, errors %s\n",
		r.StreamsOpened, r.Drops, r.Vanished, r.CutByServer, r.ReadyP50ms, r.ReadyP99ms, r.ReadyMaxMs,
		r.Acked, r.Posted, r.PostP50ms, r.PostP99ms, r.PostMaxMs, r.DelivP99ms, r.LegitRequests, fmtCounts(r.LegitErrors))
	fmt.Fprintf(w, "- resumed streams: %d final resumes, %d resets, **%d acknowledged messages missing**, %d duplicates\n",
		r.FinalResumes, r.Resets, r.Missing, r.Dups)
	fmt.Fprintf(w, "- attacker, idle sockets: %.0f connections refused by the server (%d seen refused, %d closed by its timeouts, at most %d open at once client side)\n",
		r.RefusedByServer, r.IdleRefused, r.IdleTimedOut, r.IdleMaxOpen)
	fmt.Fprintf(w, "- attacker, flood: %d posts accepted (the limit allows %d in the time), %d refused 429, other %s\n",
		r.FloodOK, r.FloodAllowed, r.Flood429, fmtCounts(r.FloodOther))
	if len(r.Failures) == 0 {
		fmt.Fprintln(w, "- **passed**")
	} else {
		fmt.Fprintf(w, "- **FAILED**: %s\n", strings.Join(r.Failures, "; "))
	}
}

func fmtCounts(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func appendJSON(path string, v any) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	return json.NewEncoder(f).Encode(v)
}
