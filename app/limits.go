package app

import "github.com/ssechat/ssechat/limits"

// shareLimits keeps the abuse limits' buckets in Redis when the instances
// share one (and nobody chose a backend), so that each limit holds across
// the instances rather than once per instance; without Redis they stay in
// this process. The limits open their own connection pool, with short
// timeouts: they fail open when Redis does not answer (see limits.Redis).
// It returns what closes them.
func shareLimits(cfg *Config) (closeLimits func() error) {
	if cfg.Redis == "" || cfg.HTTP.LimitBackend != nil || cfg.HTTP.Limits.Off {
		return func() error { return nil }
	}
	prefix := cfg.RedisPrefix
	if prefix == "" {
		prefix = DefaultRedisPrefix(cfg.DB)
	}
	r, err := limits.OpenRedis(cfg.Redis, prefix, cfg.Log)
	if err != nil {
		// The cluster parsed the same URL a moment ago: not expected.
		cfg.Log.Error("limits: counting in this process only", "err", err)
		return func() error { return nil }
	}
	cfg.HTTP.LimitBackend = r
	return r.Close
}
