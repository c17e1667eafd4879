package handlers

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// ReadyCheck is one dependency that /readyz checks.
type ReadyCheck struct {
	// Name names the dependency in /readyz's answer ("store", "redis").
	Name string
	// Ping returns nil if the dependency answers. It must be cheap (one
	// trivial query): load balancers call /readyz every few seconds. Its
	// context ends after readyTimeout.
	Ping func(ctx context.Context) error
}

// readyTimeout bounds /readyz's checks: a dependency slower than this
// to answer a trivial query is as good as down for a chat.
const readyTimeout = 2 * time.Second

// healthz answers while the process serves HTTP at all (liveness): it
// checks nothing else, so that an outage of the database does not get
// every instance restarted.
func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz answers 200 while every dependency in Options.Ready answers
// (readiness), and 503 naming those that do not. The reasons are logged
// at debug level, never shown: the route is public. The store and the
// cluster log their own outages.
func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), readyTimeout)
	defer cancel()
	errs := make([]error, len(s.opts.Ready))
	var wg sync.WaitGroup
	for i, check := range s.opts.Ready {
		wg.Go(func() { errs[i] = check.Ping(ctx) })
	}
	wg.Wait()
	checks := make(map[string]string, len(s.opts.Ready))
	var down []string
	for i, check := range s.opts.Ready {
		if errs[i] != nil {
			checks[check.Name] = "down"
			down = append(down, check.Name)
			s.log.Debug("not ready", "check", check.Name, "err", errs[i])
			continue
		}
		checks[check.Name] = "ok"
	}
	if len(down) > 0 {
		c.JSON(http.StatusServiceUnavailable, gin.H{
			"status": "unavailable",
			"error":  "unreachable: " + strings.Join(down, ", "),
			"checks": checks,
		})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok", "checks": checks})
}
