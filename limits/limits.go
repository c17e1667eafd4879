// Package limits keeps the abuse limits: token buckets counted per key (a
// user, a client address), in this process (Memory) or, when instances
// share a Redis, in Redis (Redis), so that the limits hold across them.
//
// A limit refuses; it never delays. The HTTP edge answers a refusal with
// 429 and Retry-After, and it is the only package that knows the rules'
// meaning: here a rule is only a name, a refill interval and a burst.
package limits

import (
	"context"
	"fmt"
	"math"
	"time"
)

// Limiter counts one kind of event (a message, a failed login) per key in
// a token bucket. Buckets start full; a missing or forgotten bucket is a
// full one. Safe for concurrent use.
type Limiter interface {
	// Allow takes a token from key's bucket and reports true. When the
	// bucket is empty it takes nothing and reports false and how long
	// until a token is back (more than 0). A limiter that cannot reach
	// its store allows.
	Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration)
	// Refund gives back a token Allow took, for an event that turned out
	// not to count (a login whose password was right, say). A bucket
	// never holds more than its burst.
	Refund(ctx context.Context, key string)
}

// Backend makes the limiter of a rule. Every limiter of one backend with
// the same rule name shares its buckets.
type Backend interface {
	Limiter(r Rule) Limiter
}

// Rule is a token bucket: Burst events at once, then one more every Every.
type Rule struct {
	// Name tells the rule's buckets apart: in Redis keys, one of
	// a-z 0-9 and '-'.
	Name  string
	Every time.Duration
	Burst int
}

// PerWindow is a rule of n events per window: n at once, then the
// window's share (window/n) one after the other.
func PerWindow(name string, n int, window time.Duration) Rule {
	if n <= 0 {
		return Rule{Name: name}
	}
	return Rule{Name: name, Every: window / time.Duration(n), Burst: n}
}

// Off reports whether the rule limits nothing.
func (r Rule) Off() bool { return r.Every <= 0 || r.Burst < 1 }

// idle is how long a bucket must go untouched to be full again, whatever
// it held: forgetting it after that changes nothing.
func (r Rule) idle() time.Duration { return r.Every * time.Duration(r.Burst) }

// Seconds is retryAfter as Retry-After says it: whole seconds, rounded
// up, at least 1. A millisecond of slack absorbs the floating point of
// the in-process buckets, so that "retry in 90 s" is not 91.
func Seconds(retryAfter time.Duration) int {
	s := int((retryAfter - time.Millisecond + time.Second - 1) / time.Second)
	return max(s, 1)
}

// The windows of the rules that count per window.
const (
	LoginWindow        = 15 * time.Minute
	RegistrationWindow = time.Hour
	RoomWindow         = time.Hour
	ReadWindow         = time.Minute
)

// Config sets the abuse limits. A zero field turns its limit off, so the
// zero value limits nothing (tests, embedding); Defaults is what the
// command starts with.
type Config struct {
	// Off turns every limit off at once, whatever the fields say
	// (--limits off: benchmarks, trusted networks).
	Off bool
	// MessageRate is how many messages (room and private) a user may post
	// a second on average, MessageBurst how many at once after a pause
	// (less than 1 counts as 1).
	MessageRate  float64
	MessageBurst int
	// FailedLoginsPerName and FailedLoginsPerIP are how many logins with
	// a wrong password a username and a client address may have per
	// LoginWindow. A login in progress counts until its password proved
	// right, so that a flood of parallel guesses gets no more tries.
	FailedLoginsPerName int
	FailedLoginsPerIP   int
	// RegistrationsPerIP is how many accounts a client address may
	// register per RegistrationWindow.
	RegistrationsPerIP int
	// RoomsPerUser is how many rooms a user may create (join first) per
	// RoomWindow.
	RoomsPerUser int
	// StreamsPerUser is how many streams a user may hold open on one
	// instance.
	StreamsPerUser int
	// ReadsPerUser is how many read marks a user may make per ReadWindow:
	// each mark that moves a marker is a durable write through the one
	// ordered log, like a message.
	ReadsPerUser int
}

// Defaults are the limits the command starts with: far above what a person
// does, far below what a script does.
func Defaults() Config {
	return Config{
		MessageRate:         10,
		MessageBurst:        20,
		FailedLoginsPerName: 10,
		FailedLoginsPerIP:   30,
		RegistrationsPerIP:  10,
		RoomsPerUser:        20,
		StreamsPerUser:      16,
		ReadsPerUser:        120,
	}
}

// minMessageRate is the smallest message rate: its interval, 11.6 days,
// is far from overflowing a time.Duration.
const minMessageRate = 1e-6

// Validate reports the first field that cannot work: a negative count, or
// a message rate that is not a number or so small that its interval
// overflows. Zero is always fine (off).
func (c Config) Validate() error {
	if math.IsNaN(c.MessageRate) || math.IsInf(c.MessageRate, 0) || c.MessageRate < 0 {
		return fmt.Errorf("--message-rate must be a number from 0 up, not %v", c.MessageRate)
	}
	if c.MessageRate > 0 && c.MessageRate < minMessageRate {
		return fmt.Errorf("--message-rate %v is below one message in 11 days: use 0 for no limit", c.MessageRate)
	}
	for _, f := range []struct {
		flag string
		v    int
	}{
		{"--message-burst", c.MessageBurst},
		{"--failed-logins-per-name", c.FailedLoginsPerName},
		{"--failed-logins-per-ip", c.FailedLoginsPerIP},
		{"--registrations-per-ip", c.RegistrationsPerIP},
		{"--rooms-per-hour", c.RoomsPerUser},
		{"--max-streams-per-user", c.StreamsPerUser},
		{"--reads-per-minute", c.ReadsPerUser},
	} {
		if f.v < 0 {
			return fmt.Errorf("%s must not be negative", f.flag)
		}
	}
	return nil
}

// Messages is the rule of MessageRate and MessageBurst, per user. Each
// rule below is Off when its limit is.
func (c Config) Messages() Rule {
	if c.Off || !(c.MessageRate >= minMessageRate) || math.IsInf(c.MessageRate, 1) {
		return Rule{Name: "messages"}
	}
	return Rule{Name: "messages", Every: time.Duration(float64(time.Second) / c.MessageRate), Burst: max(c.MessageBurst, 1)}
}

// FailedLoginsName is the rule of FailedLoginsPerName, per username.
func (c Config) FailedLoginsName() Rule {
	return c.perWindow("login-name", c.FailedLoginsPerName, LoginWindow)
}

// FailedLoginsIP is the rule of FailedLoginsPerIP, per client address.
func (c Config) FailedLoginsIP() Rule {
	return c.perWindow("login-ip", c.FailedLoginsPerIP, LoginWindow)
}

// Registrations is the rule of RegistrationsPerIP, per client address.
func (c Config) Registrations() Rule {
	return c.perWindow("register-ip", c.RegistrationsPerIP, RegistrationWindow)
}

// Rooms is the rule of RoomsPerUser, per user.
func (c Config) Rooms() Rule { return c.perWindow("rooms", c.RoomsPerUser, RoomWindow) }

// Reads is the rule of ReadsPerUser, per user.
func (c Config) Reads() Rule { return c.perWindow("reads", c.ReadsPerUser, ReadWindow) }

// Streams is the stream cap, 0 when off.
func (c Config) Streams() int {
	if c.Off {
		return 0
	}
	return max(c.StreamsPerUser, 0)
}

func (c Config) perWindow(name string, n int, window time.Duration) Rule {
	if c.Off {
		n = 0
	}
	return PerWindow(name, n, window)
}
