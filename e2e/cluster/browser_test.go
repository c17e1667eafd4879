//go:build unix

package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ssechat/ssechat/internal/browsertest"
)

// browserWait bounds every wait for the page.
const browserWait = browsertest.Timeout

// The browser client through nginx while each instance in turn is killed
// with -9 (the first restarted before the second dies): the page shows
// every acknowledged message exactly once, in order, without a reload.
func TestBrowserThroughNginxWhileKillingInstances(t *testing.T) {
	browser := browsertest.Launch(t) // skips when there is no Chromium
	c := startCluster(t)
	p := openBrowser(t, browser)

	p.Do("logging in as alice",
		chromedp.Navigate(c.LB.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("login-username")),
		chromedp.SendKeys(chromedp.ID("login-username"), "alice"),
		chromedp.SendKeys(chromedp.ID("login-password"), "alice-password"),
		chromedp.Click(chromedp.ID("login-submit")),
	)
	p.waitLive()
	p.Do("joining lobby", chromedp.SendKeys(chromedp.ID("join-room"), "lobby\n"))
	p.Wait("the view #lobby", `document.getElementById('view-title').textContent === '#lobby'`+
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
		p.Wait(fmt.Sprintf("the message %q", text), countText(text)+` >= 1`)
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
	p.Wait("every acknowledged message, in order", `(() => {
		const want = `+string(want)+`;
		const set = new Set(want);
		const got = [...document.querySelectorAll('#message-list .msg .text')].map(e => e.textContent).filter(s => set.has(s));
		return JSON.stringify(got) === JSON.stringify(want);
	})()`)
	shown := browsertest.Eval[[]string](p.Page, `[...document.querySelectorAll('#message-list .msg .text')].map(e => e.textContent).filter(s => s.startsWith('bob '))`)
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
	if probs := p.Log.Problems(); len(probs) > 0 {
		t.Errorf("page console problems:\n%s", strings.Join(probs, "\n"))
	}
}

// browserPage is one headless Chromium tab.
type browserPage struct{ *browsertest.Page }

// openBrowser opens a tab in browser, closed at cleanup.
func openBrowser(t *testing.T, browser context.Context) *browserPage {
	t.Helper()
	p := &browserPage{browsertest.Open(t, browser, "alice")}
	t.Cleanup(func() { // before the tab closes
		if t.Failed() {
			t.Log(p.State())
		}
	})
	return p
}

func (p *browserPage) waitLive() {
	p.T.Helper()
	p.Wait("the chat view with a live stream",
		`document.body.dataset.view === 'chat' && document.body.dataset.conn === 'live'`)
}

// countText is a JavaScript expression: how many messages in the view
// have exactly this text.
func countText(text string) string {
	b, _ := json.Marshal(text)
	return `[...document.querySelectorAll('#message-list .msg .text')].filter(e => e.textContent === ` + string(b) + `).length`
}
