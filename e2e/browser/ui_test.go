package browser

import (
	"context"
	"fmt"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// The helpers below drive the page the way a person does: through its form
// fields and keys. The waits read the DOM, and the page marks its state on
// <body>: data-view (login | chat) and data-conn (connecting | live | reconnecting).

func (p *page) open(path string) {
	p.T.Helper()
	p.do("opening "+path, chromedp.Navigate(p.base+path))
}

func (p *page) login(user, password string) {
	p.T.Helper()
	p.loginAt("/", user, password)
}

// loginAt opens path and logs in through the form.
func (p *page) loginAt(path, user, password string) {
	p.T.Helper()
	p.open(path)
	p.do("logging in as "+user,
		chromedp.WaitVisible(chromedp.ID("login-username")),
		chromedp.SendKeys(chromedp.ID("login-username"), user),
		chromedp.SendKeys(chromedp.ID("login-password"), password),
		chromedp.Click(chromedp.ID("login-submit")),
	)
	p.waitLive()
}

func (p *page) waitLive() {
	p.T.Helper()
	p.wait("the chat view with a live stream",
		`document.body.dataset.view === 'chat' && document.body.dataset.conn === 'live'`)
}

func (p *page) join(room string) {
	p.T.Helper()
	p.do("joining "+room, chromedp.SendKeys(chromedp.ID("join-room"), room+"\n"))
	p.waitView("#" + room)
}

// waitView waits until the view titled title (#room or @user) is open and
// its history has loaded.
func (p *page) waitView(title string) {
	p.T.Helper()
	p.wait("the view "+title, `document.getElementById('view-title').textContent === `+js(title)+
		` && !document.getElementById('composer').hidden`+
		` && document.getElementById('history-status').textContent !== 'Loading…'`)
}

// pressEnter presses Enter in the focused element the way a keyboard does.
// SendKeys("\n") would add a char event after the keydown, and that event
// inserts a line break even when the page cancelled the keydown (see
// chromedp's docs/API.md, "Send a new line to an editor").
func pressEnter() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, typ := range []input.DispatchKeyEventType{input.DispatchKeyEventTypeRawKeyDown, input.DispatchKeyEventTypeKeyUp} {
			_, err := cdp.Call(ctx, t, input.DispatchKeyEvent, input.DispatchKeyEventParams{
				Type: typ, Key: "Enter", Code: "Enter", WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13,
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// say types text into the composer and presses Enter.
func (p *page) say(text string) {
	p.T.Helper()
	p.do(fmt.Sprintf("sending %q", text),
		chromedp.SendKeys(chromedp.ID("composer-text"), text),
		pressEnter(),
	)
	p.wait("the composer to empty after sending", `document.getElementById('composer-text').value === ''`)
}

func (p *page) click(what, css string) {
	p.T.Helper()
	p.do("clicking "+what, chromedp.Click(chromedp.CSS(css)))
}

func (p *page) waitMessage(text string) {
	p.T.Helper()
	p.wait(fmt.Sprintf("the message %q", text), countMessages(text)+` >= 1`)
}

// countMessages is a JavaScript expression: how many messages in the view
// have exactly this text.
func countMessages(text string) string {
	return `[...document.querySelectorAll('#message-list .msg .text')].filter(e => e.textContent === ` + js(text) + `).length`
}

// memberIs is a JavaScript predicate: user is in the members list, with the
// online dot on or off.
func memberIs(user string, online bool) string {
	sel := fmt.Sprintf(`#member-list li[data-user=%q]`, user)
	return fmt.Sprintf(`(() => { const li = document.querySelector(%s); return !!li && li.classList.contains('online') === %t; })()`, js(sel), online)
}

// checkConsole fails the test if the page threw or broke its CSP.
func (p *page) checkConsole() {
	p.T.Helper()
	for _, line := range p.Log.Problems() {
		p.T.Errorf("%s: page console: %s", p.Name, line)
	}
}
