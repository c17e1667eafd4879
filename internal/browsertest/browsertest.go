// Package browsertest drives headless Chromium pages for the end-to-end
// tests (e2e/browser, e2e/cluster): launching the browser, opening tabs,
// acting on and polling a page with deadlines, and keeping its console.
package browsertest

import (
	"context"
	"fmt"
	"iter"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ssechat/ssechat/internal/pgtest"
)

// ChromiumPath is where ci/install-chromium.sh puts Chromium.
const ChromiumPath = "/usr/bin/chromium"

// Timeout bounds every wait for a page; generous because the suites run
// with -race on two cores next to other packages' tests.
const Timeout = 20 * time.Second

// Launch starts one headless Chromium for the test, closed at cleanup.
// Without Chromium it skips the test, or fails it under
// CHAT_REQUIRE_SERVICES=1 (pgtest.Missing). Open tabs in it with Open.
func Launch(t testing.TB) context.Context {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		pgtest.Missing(t, "%s is missing (ci/install-chromium.sh installs it)", ChromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		// Many tabs are open at once: none of them may be throttled as a
		// background page, or their timers (and our polls) would crawl.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", ChromiumPath, err)
	}
	return ctx
}

// Page is one browser tab, driven by one test goroutine.
type Page struct {
	T    testing.TB
	Ctx  context.Context
	Name string   // prefixes the page's failure messages
	Log  *Console // what the page wrote to its console

	cancel context.CancelFunc
}

// Open opens a tab in parent (a browser from Launch, or another tab: then
// the same browser context) with opts, e.g.
// chromedp.WithNewBrowserContext() for a browser profile of its own. The
// tab closes at cleanup and, if the test failed, logs its console.
func Open(t testing.TB, parent context.Context, name string, opts ...chromedp.ContextOption) *Page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(parent, opts...)
	p := &Page{T: t, Ctx: ctx, Name: name, Log: &Console{}, cancel: cancel}
	if err := chromedp.Do(ctx); err != nil { // opens the tab
		cancel()
		t.Fatalf("%s: opening a tab: %v", name, err)
	}
	// Subscribe before anything loads, so that no message is lost.
	go p.Log.Collect(chromedp.Console(ctx))
	t.Cleanup(func() {
		cancel()
		if t.Failed() {
			t.Logf("%s console:\n%s", name, p.Log.String())
		}
	})
	return p
}

// Close closes the tab (its cleanup still reports its console on failure).
func (p *Page) Close() { p.cancel() }

// Do runs actions within Timeout; on error it fails the test with the
// page's state.
func (p *Page) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, Timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.T.Fatalf("%s: %s: %v\n%s", p.Name, what, err, p.State())
	}
}

// Wait polls a JavaScript expression until it is truthy, for up to
// Timeout. It polls on a timer rather than on animation frames, which a
// background tab never gets.
func (p *Page) Wait(what, expr string) {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, Timeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond),
		chromedp.WithPollingTimeout(Timeout)))
	if err != nil {
		p.T.Fatalf("%s: waiting for %s: %v\n%s", p.Name, what, err, p.State())
	}
}

// Eval evaluates a JavaScript expression and decodes its value into T.
func Eval[T any](p *Page, expr string) T {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, Timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.T.Fatalf("%s: evaluating %s: %v", p.Name, expr, err)
	}
	return v
}

// State describes the chat page for a failure message: its URL, view,
// connection, title, errors shown and last messages.
func (p *Page) State() string {
	ctx, cancel := context.WithTimeout(p.Ctx, 2*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({
		url: location.href, view: document.body.dataset.view, conn: document.body.dataset.conn,
		title: (document.getElementById('view-title') || {}).textContent,
		errors: [...document.querySelectorAll('.error:not([hidden])')].map(e => e.textContent),
		messages: [...document.querySelectorAll('#message-list > li')].slice(-12).map(e => e.textContent),
	})`))
	if err != nil {
		return fmt.Sprintf("(page state unavailable: %v)", err)
	}
	return "page state: " + s
}

// Console keeps what a page wrote to its console, for failure reports and
// for the checks that the page threw nothing and broke no CSP rule.
type Console struct {
	mu    sync.Mutex
	lines []string
	bad   []string
}

// Collect records messages until they end or fail.
func (c *Console) Collect(messages iter.Seq2[chromedp.ConsoleMessage, error]) {
	for m, err := range messages {
		if err != nil {
			return
		}
		line := m.String()
		c.mu.Lock()
		c.lines = append(c.lines, line)
		if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
			c.bad = append(c.bad, line)
		}
		c.mu.Unlock()
	}
}

// String is everything collected so far, a line a message.
func (c *Console) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}

// Problems lists uncaught exceptions and CSP violations seen so far.
func (c *Console) Problems() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.bad...)
}
