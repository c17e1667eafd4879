//go:build unix

package cluster_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ssechat/ssechat/internal/chattest"
)

// proxy is nginx running deploy/nginx.conf in front of some instances.
type proxy struct {
	*process
	URL string // http://127.0.0.1:PORT
	dir string // its pid file, logs and temporary files
}

// renderNginx fills in the template deploy/nginx.conf: {{DIR}}, {{LISTEN}},
// and each line holding {{UPSTREAM}} once per upstream (deploy/cluster.sh
// does the same in bash).
func renderNginx(tmpl, dir, listen string, upstreams []string) string {
	var b strings.Builder
	for line := range strings.Lines(tmpl) {
		line = strings.ReplaceAll(line, "{{DIR}}", dir)
		line = strings.ReplaceAll(line, "{{LISTEN}}", listen)
		if !strings.Contains(line, "{{UPSTREAM}}") {
			b.WriteString(line)
			continue
		}
		for _, u := range upstreams {
			b.WriteString(strings.ReplaceAll(line, "{{UPSTREAM}}", u))
		}
	}
	return b.String()
}

// startNginx runs nginx with deploy/nginx.conf on a free loopback port in
// front of upstreams (host:port each) and returns once it accepts
// connections.
func startNginx(t testing.TB, upstreams ...string) *proxy {
	t.Helper()
	bin := needNginx(t)
	tmpl, err := os.ReadFile(filepath.Join(repoRoot(), "deploy", "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	// Not in t.TempDir(), whose parent only its owner may enter: nginx
	// started as root runs its workers as nobody, and they write their
	// temporary files (large bodies, large answers) here.
	dir, err := os.MkdirTemp("", "ssechat-nginx-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := &proxy{process: newProcess(t, "nginx"), dir: dir}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx error.log:\n%s\nnginx access.log:\n%s", p.file("error.log"), p.file("access.log"))
		}
	})
	conf := filepath.Join(dir, "nginx.conf")
	// The port was free when freePort looked; should something take it
	// before nginx binds, nginx exits and we try another.
	for attempt := 1; ; attempt++ {
		listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		if err := os.WriteFile(conf, []byte(renderNginx(string(tmpl), dir, listen, upstreams)), 0o644); err != nil {
			t.Fatal(err)
		}
		p.start(nil, bin, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
		_, exited := p.running()
		if listening(listen, exited, time.Now().Add(startTimeout)) {
			p.URL = "http://" + listen
			return p
		}
		p.kill()
		if attempt == 3 {
			t.Fatalf("nginx did not start: %v\n%s\n%s", p.exitErr(), p.output(), p.file("error.log"))
		}
	}
}

// file reads one of nginx's files in its directory ("" if missing).
func (p *proxy) file(name string) string {
	b, _ := os.ReadFile(filepath.Join(p.dir, name))
	return string(b)
}

// upstreamsOf lists, for each access.log line whose request line starts
// with request (e.g. "POST /api/rooms/lobby/messages"), the upstream= field:
// the instances nginx tried, in order, comma-separated.
func (p *proxy) upstreamsOf(request string) []string {
	var out []string
	for line := range strings.Lines(p.file("access.log")) {
		if !strings.Contains(line, `"`+request) {
			continue
		}
		_, rest, ok := strings.Cut(line, " upstream=")
		if !ok {
			continue
		}
		// "127.0.0.1:1, 127.0.0.1:2 502, 200 0.001": up to the statuses.
		var addrs []string
		for f := range strings.FieldsSeq(rest) {
			f = strings.TrimSuffix(f, ",")
			if !strings.Contains(f, ":") {
				break
			}
			addrs = append(addrs, f)
		}
		out = append(out, strings.Join(addrs, ","))
	}
	return out
}

// server lets chattest's clients talk through nginx.
func (p *proxy) server() *chattest.Server { return &chattest.Server{URL: p.URL} }
