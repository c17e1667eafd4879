package client

import "time"

// ShutdownJitter makes Subscribe draw the random part of its wait after a
// shutdown from f instead of rand.N.
func ShutdownJitter(f func(n time.Duration) time.Duration) SubscribeOption {
	return func(s *subscription) { s.jitter = f }
}
