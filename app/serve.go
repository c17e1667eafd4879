package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/ssechat/ssechat/internal/netguard"
)

const (
	// DefaultIdleTimeout is how long a keep-alive connection may wait for
	// its next request when Config.IdleTimeout is 0. It stays above the
	// upstream keepalive of the proxy in front (deploy/nginx.conf: 60 s),
	// so that the proxy closes an idle connection, never the instance
	// under a request the proxy is sending on it.
	DefaultIdleTimeout = 120 * time.Second
	// ReadHeaderTimeout bounds reading a request's head, and the TLS
	// handshake before it.
	ReadHeaderTimeout = 10 * time.Second
)

// Serve serves on ln until ctx ends, then shuts down gracefully within
// shutdownTimeout: open streams are told to reconnect and closed, in-flight
// writes are finished and acknowledged, then the database is closed. With
// Config.TLSCert it speaks HTTPS, HTTP/2 included. Serve closes the app
// whatever happens.
func (a *App) Serve(ctx context.Context, ln net.Listener, shutdownTimeout time.Duration) error {
	srv, err := a.server()
	if err != nil {
		ln.Close()
		return errors.Join(err, a.Close())
	}
	// Counts every connection from Accept to Close, including those the
	// broker takes over for streams; a trusted proxy's are not counted.
	// Under TLS it sees ciphertext: net/http's own errors stay plain there.
	guarded := netguard.Wrap(ln, a.cfg.MaxConnsPerIP, a.trustedProxy)
	a.metrics.WatchConnections(guarded)
	ln = guarded
	errc := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			// Under the limit: a refused connection costs no handshake.
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		a.Close()
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	// Streams never go idle, so http.Server.Shutdown alone would wait for
	// them until the deadline: the broker ends them first, in parallel.
	streamsDone := make(chan error, 1)
	go func() { streamsDone <- a.broker.Shutdown(sctx) }()
	err = srv.Shutdown(sctx)
	err = errors.Join(err, <-streamsDone)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return errors.Join(err, a.Close())
}

// server is the http.Server Serve runs.
//
// No ReadTimeout or WriteTimeout: they would end every stream at that age
// (streams get a deadline per write instead), and a request body's
// deadline is set by the handlers (handlers.Options.BodyTimeout), which
// can still answer 408. IdleTimeout does not touch streams either: an
// HTTP/1 stream's connection belongs to the broker, which clears the
// server's deadlines, and an HTTP/2 connection with a stream open is not
// idle.
func (a *App) server() (*http.Server, error) {
	idle := a.cfg.IdleTimeout
	switch {
	case idle == 0:
		idle = DefaultIdleTimeout
	case idle < 0:
		idle = 0 // net/http's "never", as ReadTimeout is 0
	}
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: ReadHeaderTimeout,
		IdleTimeout:       idle,
		// OPTIONS * goes to the router too, which answers it as every
		// unknown route: a JSON 404 with our headers.
		DisableGeneralOptionsHandler: true,
	}
	if a.cfg.TLSCert == "" && a.cfg.TLSKey == "" {
		return srv, nil
	}
	var err error
	srv.TLSConfig, err = loadTLS(a.cfg.TLSCert, a.cfg.TLSKey)
	return srv, err
}

// CheckTLS reports whether Serve can serve HTTPS with the PEM files
// certFile and keyFile, for main to refuse them at start.
func CheckTLS(certFile, keyFile string) error {
	_, err := loadTLS(certFile, keyFile)
	return err
}

func loadTLS(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("HTTPS needs both a certificate and its key (--tls-cert, --tls-key)")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load the TLS certificate: %w", err)
	}
	// ServeTLS adds h2 and http/1.1 to NextProtos: browsers get HTTP/2,
	// so any number of tabs' streams share one connection.
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}

// trustedProxy reports whether addr is one of the trusted proxies, whose
// connections carry many clients' requests and streams.
func (a *App) trustedProxy(addr netip.Addr) bool {
	for _, p := range a.cfg.HTTP.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// CheckLoopback refuses a listen address that is not on loopback, for
// --pprof: profiles show the heap, every goroutine's stack and the command
// line to whoever connects. A host name must resolve to loopback only; an
// empty host ("":6060") listens on every interface.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not HOST:PORT: %w", addr, err)
	}
	if host == "" {
		return fmt.Errorf("%q listens on every interface: give a loopback host, e.g. 127.0.0.1%s", addr, addr)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !ip.Unmap().IsLoopback() {
			return fmt.Errorf("%s is not a loopback address", host)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", host, err)
	}
	if len(ips) == 0 {
		return fmt.Errorf("%s resolves to no address", host)
	}
	for _, ip := range ips {
		if !ip.Unmap().IsLoopback() {
			return fmt.Errorf("%s resolves to %s, which is not loopback", host, ip)
		}
	}
	return nil
}
