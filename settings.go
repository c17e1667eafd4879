package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ssechat/ssechat/app"
	"github.com/ssechat/ssechat/handlers"
	"github.com/ssechat/ssechat/limits"
)

// settings is everything the command line and the environment can set.
type settings struct {
	addr, db, redis, redisPrefix string
	passwordCost                 int
	heartbeat                    time.Duration
	replayLimit, streamBuffer    int
	writeTimeout                 time.Duration
	writeRate                    int
	writeGap                     time.Duration
	largeRoom                    int
	shutdownTimeout              time.Duration
	retention                    time.Duration
	pprof                        string
	logLevel                     slog.Level
	idleTimeout, bodyTimeout     time.Duration
	maxConnsPerIP                int
	tlsCert, tlsKey              string
	trustedProxies               []netip.Prefix
	limits                       limits.Config
	sessionTTL                   time.Duration
	metricsAddr, logFormat       string
	accessLog                    bool
}

// about is the first line of --help.
const about = "ssechat: a chat server that speaks Server-Sent Events (rooms, private messages, presence, exact resume)."

// envPrefix starts the environment variable of every flag: --write-gap is
// also CHAT_WRITE_GAP.
const envPrefix = "CHAT_"

// errProblems says the settings were refused; the problems were printed.
var errProblems = errors.New("invalid settings")

// parseSettings reads the flags from the environment (CHAT_ + the flag's
// name in capitals, - as _) and then from args, so that the command line
// wins, and checks them all: every problem is printed to stderr at once,
// and the error is errProblems. --help prints the usage to stdout and
// returns flag.ErrHelp.
func parseSettings(args []string, getenv func(string) string, stdout, stderr io.Writer) (*settings, error) {
	var s settings
	fl := flag.NewFlagSet("ssechat", flag.ContinueOnError)
	fl.SetOutput(io.Discard)
	defaultAddr := ":8080"
	if port := getenv("PORT"); port != "" {
		defaultAddr = ":" + port
	}
	fl.StringVar(&s.addr, "addr", defaultAddr, "listen address (the PORT environment variable sets the default port)")
	fl.StringVar(&s.db, "db", "chat.db", "SQLite database file, or a postgres:// URL for PostgreSQL")
	fl.StringVar(&s.redis, "redis", "", "redis:// URL that joins the instances on one PostgreSQL database into one chat; off when empty")
	fl.StringVar(&s.redisPrefix, "redis-prefix", "", "prefix of every Redis key and channel (default: derived from the database name)")
	fl.IntVar(&s.passwordCost, "password-cost", bcrypt.DefaultCost, "bcrypt cost; lower it only for tests and benchmarks")
	fl.DurationVar(&s.heartbeat, "heartbeat", 15*time.Second, "interval of the comment line that keeps idle streams open")
	fl.IntVar(&s.replayLimit, "replay-limit", 1000, "most events replayed on resume before the stream resets instead")
	fl.IntVar(&s.streamBuffer, "stream-buffer", 256, "events queued behind a stream's stuck write (100 ms) before the stream is closed as too slow; 4x that in any case")
	fl.DurationVar(&s.writeTimeout, "write-timeout", 10*time.Second, "a stream whose reader stalls this long is closed")
	fl.IntVar(&s.writeRate, "write-rate", 0, "stream writes a second before the fan-out batches events into fewer, larger writes; 0 is 25,000 per CPU")
	fl.DurationVar(&s.writeGap, "write-gap", 10*time.Millisecond, "shortest time between two writes to one stream; events arriving sooner go out together; 0 writes as soon as --write-rate allows")
	fl.IntVar(&s.largeRoom, "large-room", 100, "member count above which a room sends counts instead of per-user join/leave/presence notices")
	fl.DurationVar(&s.shutdownTimeout, "shutdown-timeout", 10*time.Second, "longest graceful shutdown")
	fl.DurationVar(&s.retention, "history-retention", 0, "prune events older than this (e.g. 720h); 0 keeps history forever")
	fl.StringVar(&s.pprof, "pprof", "", "serve net/http/pprof on this loopback address; off when empty")
	fl.TextVar(&s.logLevel, "log-level", slog.LevelInfo, "debug, info, warn or error")
	fl.StringVar(&s.logFormat, "log-format", "text", "log format: text or json")
	fl.BoolVar(&s.accessLog, "access-log", false, "log one line per HTTP request at info level: method, route, status, duration, client IP, bytes (never headers, queries or bodies)")
	fl.StringVar(&s.metricsAddr, "metrics-addr", "127.0.0.1:9090", "serve Prometheus metrics at /metrics on this address, a listener of its own (keep it private); off when empty")
	fl.DurationVar(&s.idleTimeout, "idle-timeout", app.DefaultIdleTimeout, "a keep-alive connection waiting this long for its next request is closed; keep it above a proxy's upstream keepalive (nginx: 60s); 0 never closes it; streams are not affected")
	fl.DurationVar(&s.bodyTimeout, "body-timeout", handlers.DefaultBodyTimeout, "a request body must arrive within this of the request's head, else 408 and the connection closes; 0 turns it off")
	fl.IntVar(&s.maxConnsPerIP, "max-conns-per-ip", 256, "most open connections (streams included) of one client address (an IPv6 /64); more are closed at once; trusted proxies are exempt; 0 is no cap (--limits off too)")
	fl.StringVar(&s.tlsCert, "tls-cert", "", "PEM certificate file (with its chain): serve HTTPS with HTTP/2; needs --tls-key")
	fl.StringVar(&s.tlsKey, "tls-key", "", "PEM private key file of --tls-cert")
	fl.Func("trusted-proxies", "comma-separated addresses or CIDR prefixes of proxies whose X-Forwarded-For and X-Forwarded-Proto are believed (e.g. 127.0.0.1/32 behind a local nginx)", func(v string) error {
		s.trustedProxies = nil
		for _, item := range strings.Split(v, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			if !strings.Contains(item, "/") {
				addr, err := netip.ParseAddr(item)
				if err != nil {
					return err
				}
				s.trustedProxies = append(s.trustedProxies, netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen()))
				continue
			}
			p, err := netip.ParsePrefix(item)
			if err != nil {
				return err
			}
			s.trustedProxies = append(s.trustedProxies, p.Masked())
		}
		return nil
	})
	fl.DurationVar(&s.sessionTTL, "session-ttl", 720*time.Hour, "a session unused this long expires (sliding: each use extends it, recorded at most once an hour); also the session cookie's Max-Age")
	s.limits = limits.Defaults()
	fl.Func("limits", `"on" (default) or "off": every abuse limit off at once, the per-address connection cap included (benchmarks, trusted networks)`, func(v string) error {
		switch v {
		case "on":
			s.limits.Off = false
		case "off":
			s.limits.Off = true
		default:
			return errors.New(`must be "on" or "off"`)
		}
		return nil
	})
	fl.Float64Var(&s.limits.MessageRate, "message-rate", s.limits.MessageRate, "messages (room and private) a user may post a second, on average; 0: no limit")
	fl.IntVar(&s.limits.MessageBurst, "message-burst", s.limits.MessageBurst, "messages a user may post at once after a pause")
	fl.IntVar(&s.limits.FailedLoginsPerName, "failed-logins-per-name", s.limits.FailedLoginsPerName, "wrong passwords a username may have per 15 minutes; 0: no limit")
	fl.IntVar(&s.limits.FailedLoginsPerIP, "failed-logins-per-ip", s.limits.FailedLoginsPerIP, "wrong passwords a client address (IPv6: its /64) may have per 15 minutes; 0: no limit")
	fl.IntVar(&s.limits.RegistrationsPerIP, "registrations-per-ip", s.limits.RegistrationsPerIP, "accounts a client address may register per hour; 0: no limit")
	fl.IntVar(&s.limits.RoomsPerUser, "rooms-per-hour", s.limits.RoomsPerUser, "rooms a user may create (join first) per hour; 0: no limit")
	fl.IntVar(&s.limits.ReadsPerUser, "reads-per-minute", s.limits.ReadsPerUser, "read marks a user may make per minute (each that moves a marker is a logged write); 0: no limit")
	fl.IntVar(&s.limits.StreamsPerUser, "max-streams-per-user", s.limits.StreamsPerUser, "streams a user may hold open at once (with --redis: on all the instances together); 0: no limit")

	var problems []string
	fl.VisitAll(func(f *flag.Flag) {
		name := envPrefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" {
			if err := f.Value.Set(v); err != nil {
				problems = append(problems, fmt.Sprintf("%s=%q: %v", name, v, err))
			}
		}
	})
	help, rest, parseProblems := parseArgs(fl, args)
	if help {
		fmt.Fprintln(stdout, about)
		fmt.Fprintf(stdout, "\nUsage: ssechat [flags]\nEvery flag can also be set by the environment: %sFLAG_NAME (--write-gap is %sWRITE_GAP); a flag on the command line wins.\n\n", envPrefix, envPrefix)
		fl.SetOutput(stdout)
		fl.PrintDefaults()
		return nil, flag.ErrHelp
	}
	problems = append(problems, parseProblems...)
	if len(rest) > 0 {
		problems = append(problems, fmt.Sprintf("unexpected arguments %q: every setting is a flag", rest))
	}
	problems = append(problems, s.check()...)
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stderr, "ssechat:", p)
		}
		fmt.Fprintln(stderr, "ssechat: see ssechat --help")
		return nil, errProblems
	}
	return &s, nil
}

// check lists every setting that cannot work.
func (s *settings) check() []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if s.addr == "" {
		bad("--addr must not be empty")
	}
	if s.db == "" {
		bad("--db must not be empty")
	}
	if s.redis != "" && !app.IsPostgres(s.db) {
		bad("--redis joins instances on one PostgreSQL database: --db must be a postgres:// URL")
	}
	if s.redis != "" && !strings.HasPrefix(s.redis, "redis://") && !strings.HasPrefix(s.redis, "rediss://") {
		bad("--redis must be a redis:// or rediss:// URL")
	}
	if s.passwordCost < bcrypt.MinCost || s.passwordCost > bcrypt.MaxCost {
		bad("--password-cost must be from %d to %d", bcrypt.MinCost, bcrypt.MaxCost)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--heartbeat", s.heartbeat}, {"--write-timeout", s.writeTimeout}, {"--shutdown-timeout", s.shutdownTimeout}, {"--session-ttl", s.sessionTTL}} {
		if d.v <= 0 {
			bad("%s must be positive", d.name)
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"--replay-limit", s.replayLimit}, {"--stream-buffer", s.streamBuffer}, {"--large-room", s.largeRoom}} {
		if n.v <= 0 {
			bad("%s must be positive", n.name)
		}
	}
	if s.retention < 0 {
		bad("--history-retention must not be negative")
	}
	if s.writeRate < 0 {
		bad("--write-rate must not be negative")
	}
	if s.writeGap < 0 {
		bad("--write-gap must not be negative")
	}
	if s.idleTimeout < 0 {
		bad("--idle-timeout must not be negative")
	}
	if s.bodyTimeout < 0 {
		bad("--body-timeout must not be negative")
	}
	if s.maxConnsPerIP < 0 {
		bad("--max-conns-per-ip must not be negative")
	}
	if (s.tlsCert == "") != (s.tlsKey == "") {
		bad("--tls-cert and --tls-key go together")
	} else if s.tlsCert != "" {
		if err := app.CheckTLS(s.tlsCert, s.tlsKey); err != nil {
			bad("--tls-cert/--tls-key: %v", err)
		}
	}
	if s.pprof != "" {
		if err := app.CheckLoopback(s.pprof); err != nil {
			bad("--pprof: %v", err)
		}
	}
	if s.logFormat != "text" && s.logFormat != "json" {
		bad(`--log-format must be "text" or "json"`)
	}
	if err := s.limits.Validate(); err != nil {
		bad("%v", err)
	}
	return problems
}

// parseArgs sets the flags in args and goes on past a bad one, so that
// every problem is reported at once (flag.FlagSet.Parse stops at the
// first). It returns whether help was asked for, the arguments after the
// flags, and the problems.
func parseArgs(fl *flag.FlagSet, args []string) (help bool, rest []string, problems []string) {
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			return false, args[i+1:], problems
		}
		if len(arg) < 2 || arg[0] != '-' {
			return false, args[i:], problems
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if name == "help" || name == "h" {
			return true, nil, nil
		}
		f := fl.Lookup(name)
		if f == nil {
			problems = append(problems, fmt.Sprintf("unknown flag --%s", name))
			continue
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() && !hasValue {
			value, hasValue = "true", true
		}
		if !hasValue {
			if i+1 == len(args) {
				problems = append(problems, fmt.Sprintf("--%s needs a value", name))
				continue
			}
			i++
			value = args[i]
		}
		if err := f.Value.Set(value); err != nil {
			problems = append(problems, fmt.Sprintf("--%s=%q: %v", name, value, err))
		}
	}
	return false, nil, problems
}
