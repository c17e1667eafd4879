package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ssechat/ssechat/app"
)

// --log-format: logfmt-style text or one JSON object a line, at the level
// asked for and above.
func TestNewLogger(t *testing.T) {
	var text, js bytes.Buffer
	tl, err := app.NewLogger(&text, "text", slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	jl, err := app.NewLogger(&js, "json", slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []*slog.Logger{tl, jl} {
		l.Debug("hidden")
		l.Info("serving", "addr", "127.0.0.1:8080")
	}
	if got := text.String(); !strings.Contains(got, "msg=serving addr=127.0.0.1:8080") || strings.Contains(got, "hidden") {
		t.Errorf("text log %q", got)
	}
	var rec map[string]any
	if err := json.Unmarshal(js.Bytes(), &rec); err != nil || rec["msg"] != "serving" || rec["addr"] != "127.0.0.1:8080" {
		t.Errorf("JSON log %q: %v", js.String(), err)
	}
	if _, err := app.NewLogger(io.Discard, "xml", slog.LevelInfo); err == nil {
		t.Error("--log-format xml accepted")
	}
}

// Serve serves the public listener and the metrics listener, each its
// own routes, and closes both when it stops.
func TestServeWithMetrics(t *testing.T) {
	a, err := app.New(context.Background(), app.Config{
		DB:           filepath.Join(t.TempDir(), "chat.db"),
		PasswordCost: 4,
		Log:          slog.New(slog.DiscardHandler),
		MetricsAddr:  "127.0.0.1:0",
		Static:       fstest.MapFS{},
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx, ln, 5*time.Second) }()
	public, metrics := "http://"+ln.Addr().String(), "http://"+a.MetricsAddr()
	for _, c := range []struct {
		url  string
		want int
	}{
		{public + "/healthz", 200},
		{public + "/readyz", 200},
		{public + "/metrics", 404},
		{metrics + "/metrics", 200},
		{metrics + "/healthz", 404},
	} {
		resp, err := http.Get(c.url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET %s: %d, want %d", c.url, resp.StatusCode, c.want)
		}
	}
	stop()
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(metrics, "http://"), time.Second); err == nil {
		t.Error("the metrics listener is still open after Serve returned")
	}
}
