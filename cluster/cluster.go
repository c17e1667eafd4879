// Package cluster carries the news between the instances that share one
// event log: that the log grew, who is online anywhere, which sessions
// ended. The log itself (PostgreSQL or SQLite) is the truth; everything
// here may be lost and is recovered from the log or rebuilt by the
// instances, so a lost notice delays an event but never loses it.
//
// Local is the news of a lone instance (SQLite, or PostgreSQL without
// --redis); Redis joins any number of instances.
package cluster

import (
	"context"
	"sync"
)

// Listener is what the news is told to. Its methods are called from the
// cluster's own goroutines, one call at a time, and must not block for
// long.
type Listener interface {
	// LogGrew says that the log holds events up to head.
	LogGrew(head int64)
	// PresenceChanged says that user came online (their first stream
	// anywhere opened) or went offline (their last one closed, or the
	// instance holding it died). It is told to every instance, this one
	// included.
	PresenceChanged(user string, online bool)
	// SessionEnded says that the session whose key is key ended (a logout
	// on any instance): forget it and close its streams.
	SessionEnded(key string)
	// Resync says that news may have been lost (the connection to Redis
	// dropped and came back): reload whatever is derived from it.
	Resync()
}

// Local is the cluster of one instance: every notice goes straight to the
// listener.
type Local struct {
	mu       sync.Mutex
	listener Listener
	online   map[string]bool
}

// NewLocal returns the news of a lone instance.
func NewLocal() *Local { return &Local{online: make(map[string]bool)} }

// Start sets the listener; notices before it are dropped.
func (l *Local) Start(_ context.Context, listener Listener) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.listener = listener
}

// Announce does nothing: the log's only writer has applied it already.
func (l *Local) Announce(context.Context, int64) {}

// SetLocal records how many streams of user this instance holds, and
// tells the listener when that makes the user come online or go offline.
func (l *Local) SetLocal(_ context.Context, user string, streams int) error {
	holds := streams > 0
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.online[user] == holds {
		return nil
	}
	if holds {
		l.online[user] = true
	} else {
		delete(l.online, user)
	}
	if l.listener != nil {
		l.listener.PresenceChanged(user, holds)
	}
	return nil
}

// Online lists the users online.
func (l *Local) Online(context.Context) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.online))
	for u := range l.online {
		out = append(out, u)
	}
	return out, nil
}

// StreamsElsewhere is always 0: there is no elsewhere.
func (l *Local) StreamsElsewhere(context.Context, string) (int, error) { return 0, nil }

// EndSession tells the listener at once.
func (l *Local) EndSession(_ context.Context, key string) error {
	l.mu.Lock()
	listener := l.listener
	l.mu.Unlock()
	if listener != nil {
		listener.SessionEnded(key)
	}
	return nil
}

// Ping always succeeds: there is nothing to reach.
func (l *Local) Ping(context.Context) error { return nil }

// Close does nothing.
func (l *Local) Close() error { return nil }
