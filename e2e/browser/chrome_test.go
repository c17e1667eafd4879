package browser

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ssechat/ssechat/internal/browsertest"
)

// waitTimeout bounds every wait for the page.
const waitTimeout = browsertest.Timeout

// newBrowser starts one headless Chromium for the test. Users get their own
// browser context (cookie jar, storage, SharedWorkers) inside it, which is
// much cheaper than one browser each.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	return browsertest.Launch(t)
}

// page is one browser tab, driven by one test goroutine.
type page struct {
	*browsertest.Page
	base string
}

// newUser opens a tab in a fresh browser context: a browser profile of its
// own, as a different person on a different machine would have.
func newUser(t *testing.T, browser context.Context, base, name string) *page {
	t.Helper()
	return &page{browsertest.Open(t, browser, name, chromedp.WithNewBrowserContext()), base}
}

// newTab opens another tab next to p, in the same browser context (same
// cookies, same SharedWorker).
func (p *page) newTab(name string) *page {
	p.T.Helper()
	return &page{browsertest.Open(p.T, p.Ctx, name), p.base}
}

func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.T.Helper()
	p.Do(what, actions...)
}

func (p *page) wait(what, expr string) {
	p.T.Helper()
	p.Wait(what, expr)
}

func eval[T any](p *page, expr string) T {
	p.T.Helper()
	return browsertest.Eval[T](p.Page, expr)
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // a string always marshals
	}
	return string(b)
}
