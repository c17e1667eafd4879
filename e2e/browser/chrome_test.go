package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const chromiumPath = "/usr/bin/chromium"

// waitTimeout bounds every wait for the page; generous because the suite
// runs with -race on two cores next to other packages' tests.
const waitTimeout = 20 * time.Second

// newBrowser starts one headless Chromium for the test. Users get their own
// browser context (cookie jar, storage, SharedWorkers) inside it, which is
// much cheaper than one browser each.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CHAT_REQUIRE_SERVICES") == "1" {
			t.Fatalf("CHAT_REQUIRE_SERVICES=1 but %s is missing: run ci/install-chromium.sh", chromiumPath)
		}
		t.Skipf("skipping the browser tests: %s is missing (ci/install-chromium.sh installs it)", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
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
		// Ten tabs are open at once: none of them may be throttled as a
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
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	return ctx
}

// page is one browser tab, driven by one test goroutine.
type page struct {
	t      *testing.T
	ctx    context.Context
	cancel context.CancelFunc
	name   string
	base   string
	log    *consoleLog
}

// newUser opens a tab in a fresh browser context: a browser profile of its
// own, as a different person on a different machine would have.
func newUser(t *testing.T, browser context.Context, base, name string) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	return openPage(t, ctx, cancel, base, name)
}

// newTab opens another tab next to p, in the same browser context (same
// cookies, same SharedWorker).
func (p *page) newTab(name string) *page {
	p.t.Helper()
	ctx, cancel := chromedp.NewContext(p.ctx)
	return openPage(p.t, ctx, cancel, p.base, name)
}

func openPage(t *testing.T, ctx context.Context, cancel context.CancelFunc, base, name string) *page {
	t.Helper()
	p := &page{t: t, ctx: ctx, cancel: cancel, name: name, base: base, log: &consoleLog{}}
	if err := chromedp.Do(ctx); err != nil { // opens the tab
		cancel()
		t.Fatalf("%s: opening a tab: %v", name, err)
	}
	// Subscribe before anything loads, so that no message is lost.
	go p.log.collect(chromedp.Console(ctx))
	t.Cleanup(func() {
		cancel()
		if t.Failed() {
			t.Logf("%s console:\n%s", name, p.log.String())
		}
	})
	return p
}

// close closes the tab (its cleanup still reports its console on failure).
func (p *page) close() { p.cancel() }

// do runs actions with the page's deadline.
func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %s: %v\n%s", p.name, what, err, p.state())
	}
}

// wait polls a JavaScript expression until it is truthy. It polls on a
// timer rather than on animation frames, which a background tab never gets.
func (p *page) wait(what, expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitTimeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond),
		chromedp.WithPollingTimeout(waitTimeout)))
	if err != nil {
		p.t.Fatalf("%s: waiting for %s: %v\n%s", p.name, what, err, p.state())
	}
}

// eval evaluates a JavaScript expression and decodes its value into T.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, waitTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("%s: evaluating %s: %v", p.name, expr, err)
	}
	return v
}

// state describes the page for a failure message.
func (p *page) state() string {
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({
		url: location.href, view: document.body.dataset.view, conn: document.body.dataset.conn,
		title: (document.getElementById('view-title') || {}).textContent,
		errors: [...document.querySelectorAll('.error:not([hidden])')].map(e => e.textContent),
		messages: [...document.querySelectorAll('#message-list > li')].slice(-8).map(e => e.textContent),
	})`))
	if err != nil {
		return fmt.Sprintf("(page state unavailable: %v)", err)
	}
	return "page state: " + s
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // a string always marshals
	}
	return string(b)
}

// consoleLog keeps what a page wrote to its console, for failure reports
// and for the checks that the page threw nothing and broke no CSP rule.
type consoleLog struct {
	mu    sync.Mutex
	lines []string
	bad   []string
}

func (c *consoleLog) collect(messages iter.Seq2[chromedp.ConsoleMessage, error]) {
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

func (c *consoleLog) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}

// problems lists uncaught exceptions and CSP violations seen so far.
func (c *consoleLog) problems() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.bad...)
}
