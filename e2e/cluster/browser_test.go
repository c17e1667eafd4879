//go:build unix

package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

const chromiumPath = "/usr/bin/chromium"

// browserWait bounds every wait for the page.
const browserWait = 20 * time.Second

// The browser client through nginx while each instance in turn is killed
// with -9 (the first restarted before the second dies): the page shows
// every acknowledged message exactly once, in order, without a reload.
func TestBrowserThroughNginxWhileKillingInstances(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CHAT_REQUIRE_SERVICES") == "1" {
			t.Fatalf("CHAT_REQUIRE_SERVICES=1 but %s is missing: run ci/install-chromium.sh", chromiumPath)
		}
		t.Skipf("skipping: %s is missing (ci/install-chromium.sh installs it)", chromiumPath)
	}
	c := startCluster(t)
	p := openBrowser(t, c.LB.URL)

	p.do("logging in as alice",
		chromedp.Navigate(c.LB.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("login-username")),
		chromedp.SendKeys(chromedp.ID("login-username"), "alice"),
		chromedp.SendKeys(chromedp.ID("login-password"), "alice-password"),
		chromedp.Click(chromedp.ID("login-submit")),
	)
	p.waitLive()
	p.do("joining lobby", chromedp.SendKeys(chromedp.ID("join-room"), "lobby\n"))
	p.wait("the view #lobby", `document.getElementById('view-title').textContent === '#lobby'`+
		` && !document.getElementById('composer').hidden`+
		` && document.getElementById('history-status').textContent !== 'Loading…'`)

	bob := user(t, c.LB.server(), "bob", "lobby")
	l := newLedger()
	var texts []string // every text posted, in order
	var acked []string // those answered 201, in order
	i := 0
	// post posts "bob i", i = 1, 2, …, through nginx until n more are
	// acknowledged; a 502 or no answer while an instance dies is allowed.
	post := func(n int) {
		t.Helper()
		deadline := time.Now().Add(browserWait)
		for got := 0; got < n; {
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d posts acknowledged within %v: %v", got, n, browserWait, l)
			}
			i++
			text := fmt.Sprintf("bob %d", i)
			texts = append(texts, text)
			status, _, _ := l.post(c.LB.URL, bob.Token, "/api/rooms/lobby/messages", text)
			if status == http.StatusCreated {
				acked = append(acked, text)
				got++
				continue
			}
			time.Sleep(20 * time.Millisecond) // pace the retries: nginx answers 502 at once
		}
	}
	shows := func(text string) {
		t.Helper()
		p.wait(fmt.Sprintf("the message %q", text), countText(text)+` >= 1`)
	}

	post(5)
	shows(acked[len(acked)-1])

	c.A.kill()
	post(5)
	shows(acked[len(acked)-1]) // the page's stream is on B now
	c.A.restart()

	c.B.kill()
	post(5)
	shows(acked[len(acked)-1]) // and on A now
	c.B.restart()
	post(5)
	t.Logf("posts: %v", l)
	t.Logf("the page's streams through nginx went to (A %s, B %s): %q", c.A.Addr, c.B.Addr, c.LB.upstreamsOf("GET /api/stream"))

	// Every acknowledged message shows once, in order; an unacknowledged one
	// (committed or not) at most once; nothing else.
	want, err := json.Marshal(acked)
	if err != nil {
		t.Fatal(err)
	}
	p.wait("every acknowledged message, in order", `(() => {
		const want = `+string(want)+`;
		const set = new Set(want);
		const got = [...document.querySelectorAll('#message-list .msg .text')].map(e => e.textContent).filter(s => set.has(s));
		return JSON.stringify(got) === JSON.stringify(want);
	})()`)
	shown := evalStrings(p, `[...document.querySelectorAll('#message-list .msg .text')].map(e => e.textContent).filter(s => s.startsWith('bob '))`)
	posted := map[string]bool{}
	for _, s := range texts {
		posted[s] = true
	}
	seen := map[string]int{}
	for _, s := range shown {
		seen[s]++
		if !posted[s] {
			t.Errorf("the page shows %q, which was never posted", s)
		}
		if seen[s] == 2 {
			t.Errorf("the page shows %q more than once", s)
		}
	}
	if len(shown) < len(acked) {
		t.Errorf("the page shows %d messages, want at least the %d acknowledged", len(shown), len(acked))
	}
	t.Logf("the page shows %d messages: %d acknowledged, %d unacknowledged but committed", len(shown), len(acked), len(shown)-len(acked))
	if probs := p.log.problems(); len(probs) > 0 {
		t.Errorf("page console problems:\n%s", strings.Join(probs, "\n"))
	}
}

// browserPage is one headless Chromium tab.
type browserPage struct {
	t   *testing.T
	ctx context.Context
	log *pageLog
}

// openBrowser starts a headless Chromium with one tab, closed at cleanup.
func openBrowser(t *testing.T, base string) *browserPage {
	t.Helper()
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
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	p := &browserPage{t: t, ctx: ctx, log: &pageLog{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("page state: %s\npage console:\n%s", p.state(), p.log.String())
		}
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", chromiumPath, err)
	}
	go p.log.collect(ctx)
	return p
}

func (p *browserPage) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v\n%s", what, err, p.state())
	}
}

// wait polls a JavaScript expression on a timer until it is truthy.
func (p *browserPage) wait(what, expr string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond),
		chromedp.WithPollingTimeout(browserWait)))
	if err != nil {
		p.t.Fatalf("waiting for %s: %v\n%s", what, err, p.state())
	}
}

func (p *browserPage) waitLive() {
	p.t.Helper()
	p.wait("the chat view with a live stream",
		`document.body.dataset.view === 'chat' && document.body.dataset.conn === 'live'`)
}

func evalStrings(p *browserPage, expr string) []string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, browserWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](expr))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// state describes the page for a failure message.
func (p *browserPage) state() string {
	ctx, cancel := context.WithTimeout(p.ctx, 2*time.Second)
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
	return s
}

// countText is a JavaScript expression: how many messages in the view
// have exactly this text.
func countText(text string) string {
	b, _ := json.Marshal(text)
	return `[...document.querySelectorAll('#message-list .msg .text')].filter(e => e.textContent === ` + string(b) + `).length`
}

// pageLog keeps what the page wrote to its console.
type pageLog struct {
	mu    sync.Mutex
	lines []string
	bad   []string
}

func (c *pageLog) collect(ctx context.Context) {
	for m, err := range chromedp.Console(ctx) {
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

func (c *pageLog) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}

func (c *pageLog) problems() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.bad...)
}
