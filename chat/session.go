package chat

import "time"

// Session is a login as the store keeps it: whose it is, when it was
// opened, and when it was last recorded in use. Whether it has expired is
// for the caller to judge (auth: sliding expiry from LastUsed).
type Session struct {
	User     string
	Created  time.Time
	LastUsed time.Time
}
