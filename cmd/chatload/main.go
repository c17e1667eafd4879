// Command chatload measures a chat server under load on this machine: SSE
// fan-out to thousands of subscribers, the write path, idle connections and
// a connect storm, against ssechat (REST + SSE) or the Socket.IO baseline
// (bench/socketio, WebSocket transport). Every run is bounded in time, stops
// by itself and only targets loopback addresses.
//
//	chatload -mode fanout -subs 5000 -rate 20 -duration 20s -pid $PID
//	chatload -mode write -members 100 -posters 50
//	chatload -mode idle -subs 10000 -pid $PID
//	chatload -mode storm -subs 5000
//	chatload -target socketio -addr 127.0.0.1:3000 -mode fanout ...
//	chatload -addr 127.0.0.1:18093,127.0.0.1:18094 -pid $A,$B -as cluster ...
//	chatload table -in results.jsonl
//	chatload soak -server ./ssechat -users 2000 -duration 3m
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "soak" {
		if err := soakMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "chatload soak:", err)
			os.Exit(1)
		}
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "table" {
		if err := tableMain(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "chatload table:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "chatload:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("chatload", flag.ContinueOnError)
	var (
		cfg       config
		rates     string
		rate      float64
		timeout   time.Duration
		sessions  string
		password  string
		sourceIPs int
		reconnect bool
		keyed     bool
		retry     time.Duration
		out       string
		verbose   bool
		cpuprof   string
		pprofURL  string
		pprofDir  string
		pids      string
		aux       string
	)
	fs.StringVar(&cfg.Mode, "mode", "fanout", "workload: fanout, write, idle or storm")
	fs.StringVar(&cfg.Target, "target", "ours", "system under test: ours (REST+SSE) or socketio (the baseline)")
	fs.StringVar(&cfg.Name, "as", "", "name of the system in the results (their table's column); default: -target")
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "server host:port (loopback only); for several instances of one chat (ours), a comma-separated list: every user talks to one of them, users spread round-robin")
	fs.StringVar(&pids, "pid", "", "server PID, to report its RSS and CPU from /proc; a comma-separated list for several instances (summed, and each shown)")
	fs.StringVar(&aux, "aux-procs", "", "comma-separated substrings of /proc/PID/cmdline naming the database's and Redis's processes, whose CPU is reported apart instead of as other processes'")
	fs.StringVar(&cfg.AuxLabel, "aux-label", "PG+Redis", "name of the -aux-procs processes in the results")
	fs.StringVar(&cfg.Label, "label", "", "name of this workload in the results table")
	fs.StringVar(&cfg.Room, "room", "bench", "room to use")
	fs.IntVar(&cfg.Subs, "subs", 1000, "subscribers (fanout), connections (idle) or newcomers (storm)")
	fs.Float64Var(&rate, "rate", 20, "messages per second, all publishers together (fanout)")
	fs.StringVar(&rates, "rates", "", "comma-separated rates run one after another on the same subscribers (overrides -rate)")
	fs.DurationVar(&cfg.SearchP99, "search-p99", 0, "with -rates: stop at the first rate whose p99 exceeds this or loses messages, and report the highest that passed")
	fs.IntVar(&cfg.Publishers, "publishers", 4, "publishing connections (fanout)")
	fs.DurationVar(&cfg.Duration, "duration", 20*time.Second, "publishing time per rate (fanout, write)")
	fs.DurationVar(&cfg.Drain, "drain", time.Minute, "longest wait for deliveries after publishing stops (it ends earlier once deliveries stop arriving for 3s); what is missing then is lost")
	fs.IntVar(&cfg.Members, "members", 100, "room members (write)")
	fs.IntVar(&cfg.Posters, "posters", 50, "members posting back-to-back (write)")
	fs.DurationVar(&cfg.Hold, "hold", 5*time.Second, "how long connections sit idle before the RSS sample (idle)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 200, "connections, logins and joins in flight at once during setup")
	fs.DurationVar(&cfg.ConnectWait, "connect-timeout", 2*time.Minute, "bound on opening all connections")
	fs.DurationVar(&cfg.Quiet, "quiet", time.Second, "storm: the server is quiet after this long without any event")
	fs.StringVar(&cfg.Prefix, "prefix", "cl-", "username prefix")
	fs.DurationVar(&timeout, "timeout", 10*time.Minute, "hard bound on the whole run")
	fs.StringVar(&sessions, "sessions", "", "file caching session tokens between runs (ours)")
	fs.StringVar(&password, "password", "chatload-password", "password of the load accounts")
	fs.IntVar(&sourceIPs, "source-ips", 1, "loopback source addresses to spread connections over (127.0.0.1..N); needed past ~28,000 connections")
	fs.BoolVar(&reconnect, "reconnect", true, "resume a dropped SSE stream with Last-Event-ID, as EventSource does")
	fs.DurationVar(&retry, "retry", time.Second, "wait before resuming a dropped stream")
	fs.BoolVar(&keyed, "idempotency-keys", false, "every post carries an Idempotency-Key of its own (ours), to measure what exactly-once posting costs")
	fs.StringVar(&out, "out", "", "append results as JSON lines to this file")
	fs.BoolVar(&verbose, "v", false, "debug logging")
	fs.StringVar(&pprofURL, "server-pprof", "", "base URL of the server's pprof listener (http://127.0.0.1:6060): take a CPU profile over each measured phase (heap for idle)")
	fs.StringVar(&pprofDir, "profile-dir", os.TempDir(), "where server profiles go")
	fs.StringVar(&cpuprof, "cpuprofile", "", "write chatload's own CPU profile here (to check the client stays lean)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	if cfg.Addrs, err = parseAddrs(cfg.Addr); err != nil {
		return err
	}
	if cfg.PIDs, err = parsePIDs(pids); err != nil {
		return err
	}
	if aux != "" {
		cfg.AuxProcs = strings.Split(aux, ",")
	}
	cfg.Rates = []float64{rate}
	if rates != "" {
		cfg.Rates = nil
		for _, f := range strings.Split(rates, ",") {
			v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil || v <= 0 {
				return fmt.Errorf("bad -rates entry %q", f)
			}
			cfg.Rates = append(cfg.Rates, v)
		}
	}
	if cfg.Label == "" {
		cfg.Label = cfg.Mode
	}
	if cfg.Name == "" {
		cfg.Name = cfg.Target
	}
	if cpuprof != "" {
		f, err := os.Create(cpuprof)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	nofile, err := raiseNoFile()
	if err != nil {
		log.Warn("cannot raise RLIMIT_NOFILE", "err", err)
	}
	if need := uint64(cfg.Subs + cfg.Members + cfg.Concurrency + 256); nofile > 0 && nofile < need {
		log.Warn("open-files limit is below what this run needs", "limit", nofile, "need", need)
	}
	// The client shares two cores with the server: collect garbage less
	// often in exchange for memory, which is plentiful here.
	debug.SetGCPercent(400)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// connCtx owns every connection; cancelling it at the end closes them.
	connCtx, closeConns := context.WithCancel(ctx)
	defer closeConns()

	col := &collector{}
	dial := newDialers(sourceIPs)
	r := &runner{cfg: cfg, col: col, log: log,
		prof: profiler{base: pprofURL, dir: pprofDir, name: fileSafe(cfg.Label + "-" + cfg.Name)}}
	var sess *sessionCache
	switch cfg.Target {
	case "ours":
		if sess, err = loadSessions(sessions); err != nil {
			return err
		}
		streams := cfg.Subs
		if cfg.Mode == "write" {
			streams = cfg.Members
		}
		o := newOurs(cfg.Addrs, password, dial, sess, col, log, cfg.Concurrency, reconnect, retry, streams)
		o.keyed = keyed
		r.sys = o
	case "socketio":
		if len(cfg.Addrs) > 1 {
			return fmt.Errorf("-target socketio takes one -addr (the baseline has no cluster)")
		}
		r.sys = newSocketIO(cfg.Addrs[0], dial, col, log)
	default:
		return fmt.Errorf("unknown -target %q", cfg.Target)
	}

	busyBefore := r.checkQuiet(ctx)
	var results []result
	switch cfg.Mode {
	case "fanout":
		results, err = r.runFanout(connCtx)
	case "write":
		results, err = r.runWrite(connCtx)
	case "idle":
		results, err = r.runIdle(connCtx)
	case "storm":
		results, err = r.runStorm(connCtx)
	default:
		err = fmt.Errorf("unknown -mode %q", cfg.Mode)
	}
	closeConns()
	if sess != nil {
		if serr := sess.Save(); serr != nil {
			log.Warn("cannot save sessions", "err", serr)
		}
	}
	for i := range results {
		results[i].BusyBeforePct = busyBefore
	}
	for _, res := range results {
		fmt.Printf("%s %s %s: %s\n", res.Label, res.Target, res.Mode, summary(res))
	}
	if out != "" && len(results) > 0 {
		if werr := appendResults(out, results); werr != nil {
			return werr
		}
	}
	return err
}

// parseAddrs splits -addr's comma-separated list and checks that every
// address is on this machine.
func parseAddrs(s string) ([]string, error) {
	var out []string
	for _, a := range strings.Split(s, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if err := checkLoopback(a); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-addr: no address")
	}
	return out, nil
}

// parsePIDs reads -pid: empty, one PID or a comma-separated list. 0 means
// none, as it always did.
func parsePIDs(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		pid, err := strconv.Atoi(f)
		if err != nil || pid < 0 {
			return nil, fmt.Errorf("bad -pid entry %q", f)
		}
		if pid > 0 {
			out = append(out, pid)
		}
	}
	return out, nil
}

func tableMain(args []string) error {
	fs := flag.NewFlagSet("table", flag.ContinueOnError)
	in := fs.String("in", "", "results file (JSON lines)")
	targets := fs.String("targets", "ours,socketio", "columns, in order")
	notes := map[string]string{}
	vs := map[string]string{}
	fs.Func("vs", "target=base: compare target's cells with base's for the same workload (cluster=ours; repeatable)", func(s string) error {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return fmt.Errorf("want target=base")
		}
		vs[k] = v
		return nil
	})
	fs.Func("note", "label=target text for the target column (repeatable)", func(s string) error {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return fmt.Errorf("want label=text")
		}
		notes[k] = v
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	f, err := os.Open(*in)
	if err != nil {
		return err
	}
	defer f.Close()
	rs, err := readResults(f)
	if err != nil {
		return err
	}
	writeTable(os.Stdout, rs, strings.Split(*targets, ","), notes, vs)
	return nil
}
