package edge_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ssechat/ssechat/app"
	"github.com/ssechat/ssechat/internal/chattest"
)

// selfSigned writes a certificate for 127.0.0.1 and its key to dir and
// returns their paths and a pool that trusts it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ssechat test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}

// connLog records which TCP connection (by local address) each request
// of a client went on.
type connLog struct {
	mu    sync.Mutex
	conns map[string]bool
}

func (l *connLog) trace(req *http.Request) *http.Request {
	return req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.conns[info.Conn.LocalAddr().String()] = true
		},
	}))
}

func (l *connLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// traced is an http.RoundTripper that logs each request's connection.
type traced struct {
	rt  http.RoundTripper
	log *connLog
}

func (t traced) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.rt.RoundTrip(t.log.trace(req))
}

// With --tls-cert and --tls-key the server speaks HTTPS, and HTTP/2 to a
// client that offers it: a browser's tabs share one connection, their
// streams included. Everything works over it: login (whose cookie is
// Secure), two streams and the posts they carry, HEAD, the body deadline
// (a 408 on its own stream, the connection's other streams untouched). A
// client that speaks only HTTP/1.1 over TLS gets its stream too, on a
// connection the broker takes over.
func TestHTTPS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	const bodyTimeout = 500 * time.Millisecond
	srv := start(t, func(c *app.Config) {
		c.TLSCert, c.TLSKey = certFile, keyFile
		c.HTTP.BodyTimeout = bodyTimeout
	})
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	conns := &connLog{conns: map[string]bool{}}
	h2 := &http.Client{Transport: traced{tr, conns}}

	alice, resp := login(t, h2, srv.URL, "alice")
	if resp.ProtoMajor != 2 {
		t.Fatalf("login answered over %s, want HTTP/2", resp.Proto)
	}
	if c := sessionCookie(resp); c == nil || !c.Secure || !c.HttpOnly {
		t.Fatalf("session cookie over HTTPS: %+v, want Secure and HttpOnly", c)
	}
	mustDo(t, h2, http.StatusOK, "POST", srv.URL+"/api/rooms/lobby/join", alice, "")

	open := func() *chattest.Stream {
		t.Helper()
		req, err := http.NewRequest("GET", srv.URL+"/api/stream", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+alice)
		s := chattest.OpenStreamWith(t, h2, req)
		if s.Resp.ProtoMajor != 2 || s.Resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("stream over %s, X-Content-Type-Options %q", s.Resp.Proto, s.Resp.Header.Get("X-Content-Type-Options"))
		}
		s.Ready()
		return s
	}
	tab1, tab2 := open(), open()
	say := func(text string) {
		t.Helper()
		var e chattest.Event
		_, body := mustDo(t, h2, http.StatusCreated, "POST", srv.URL+"/api/rooms/lobby/messages", alice, `{"text":"`+text+`"}`)
		mustUnmarshal(t, body, &e)
		for _, s := range []*chattest.Stream{tab1, tab2} {
			s.Expect("message", func(got chattest.Event) bool { return got.ID == e.ID && got.Text == text })
		}
	}
	say("hello, both tabs")
	if head, body := do(t, h2, "HEAD", srv.URL+"/api/rooms", alice, ""); head.StatusCode != http.StatusOK || len(body) != 0 {
		t.Errorf("HEAD /api/rooms over HTTP/2: %d, %d bytes", head.StatusCode, len(body))
	}

	// A trickling body on this connection: its request answers 408 once
	// the body timeout has passed, and the connection carries on.
	pr, pw := io.Pipe()
	trickled := make(chan struct{})
	go func() {
		defer close(trickled)
		if _, err := pw.Write([]byte(`{"text":`)); err != nil {
			return
		}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for range tick.C {
			if _, err := pw.Write([]byte(" ")); err != nil {
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), chattest.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", srv.URL+"/api/rooms/lobby/messages", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+alice)
	req.Header.Set("Content-Type", "application/json")
	began := time.Now()
	slow, err := h2.Do(req)
	if err != nil {
		t.Fatalf("slow POST over HTTP/2: %v", err)
	}
	body, _ := io.ReadAll(slow.Body)
	slow.Body.Close()
	pw.CloseWithError(io.ErrClosedPipe)
	<-trickled
	if slow.StatusCode != http.StatusRequestTimeout || !isJSONError(body) || time.Since(began) < bodyTimeout {
		t.Errorf("slow POST over HTTP/2: %d %s after %v, want a JSON 408 after %v", slow.StatusCode, body, time.Since(began), bodyTimeout)
	}
	say("the tabs are still here")

	if n := conns.count(); n != 1 {
		t.Errorf("the client used %d connections, want all on one", n)
	}

	// HTTP/1.1 over TLS: the broker takes the TLS connection over.
	h1tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	t.Cleanup(h1tr.CloseIdleConnections)
	h1 := &http.Client{Transport: h1tr}
	req, err = http.NewRequest("GET", srv.URL+"/api/stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+alice)
	tab3 := chattest.OpenStreamWith(t, h1, req)
	if tab3.Resp.ProtoMajor != 1 {
		t.Fatalf("HTTP/1.1-only client got %s", tab3.Resp.Proto)
	}
	tab3.Ready()
	var e chattest.Event
	_, body = mustDo(t, h2, http.StatusCreated, "POST", srv.URL+"/api/rooms/lobby/messages", alice, `{"text":"three tabs"}`)
	mustUnmarshal(t, body, &e)
	for _, s := range []*chattest.Stream{tab1, tab2, tab3} {
		s.Expect("message", func(got chattest.Event) bool { return got.ID == e.ID })
	}
}

// A certificate without its key, or one that cannot be loaded, stops
// Serve at once with the reason; CheckTLS says so before.
func TestHTTPSMisconfigured(t *testing.T) {
	certFile, keyFile, _ := selfSigned(t, t.TempDir())
	if err := app.CheckTLS(certFile, keyFile); err != nil {
		t.Fatalf("CheckTLS of a good pair: %v", err)
	}
	for _, tc := range []struct{ name, cert, key string }{
		{"no key", certFile, ""},
		{"key is the certificate", certFile, certFile},
		{"missing files", filepath.Join(t.TempDir(), "no.pem"), filepath.Join(t.TempDir(), "no.key")},
	} {
		a, err := app.New(context.Background(), app.Config{
			DB: filepath.Join(t.TempDir(), "chat.db"), PasswordCost: 4, TLSCert: tc.cert, TLSKey: tc.key,
			Static: os.DirFS(repoDir("static")), Log: discard(),
		})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if err := app.CheckTLS(tc.cert, tc.key); err == nil {
			t.Errorf("%s: CheckTLS passed", tc.name)
		}
		if err := a.Serve(context.Background(), ln, time.Second); err == nil {
			t.Errorf("%s: Serve started", tc.name)
		} else {
			t.Logf("%s: %v", tc.name, err)
		}
	}
}
