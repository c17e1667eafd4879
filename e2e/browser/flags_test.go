package browser

// Tests that need a server of their own, started with non-default flags.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// testReset: the page was away for longer than the server replays
// (--replay-limit), so the server sends `reset`; the page reloads its
// history over REST by itself and shows everything, once.
func testReset(t *testing.T, browser context.Context, bin string) {
	srv := startServer(t, bin, "--replay-limit", "2")
	proxy := startProxy(t, srv.addr)
	uma := newUser(t, browser, proxy.url(), "uma")
	uma.login("uma", "uma-password")
	uma.join("gap")
	vic := login(t, srv.url(), "vic", "vic-password")
	if err := vic.do(context.Background(), "POST", "/api/rooms/gap/join", nil, nil); err != nil {
		t.Fatalf("vic joining: %v", err)
	}
	_ = eval[bool](uma, `window.e2eNotReloaded = true`)

	proxy.setDown(true)
	uma.wait("the reconnecting state", `document.body.dataset.conn === 'reconnecting'`)
	const missed = 6
	for i := 1; i <= missed; i++ {
		vic.send(t, "gap", fmt.Sprintf("gap %d", i))
	}
	proxy.setDown(false)
	uma.wait("a reset", `document.body.dataset.resets === '1'`)
	for i := 1; i <= missed; i++ {
		uma.waitMessage(fmt.Sprintf("gap %d", i))
	}
	uma.waitLive()
	vic.send(t, "gap", "after the reset")
	uma.waitMessage("after the reset")
	if !eval[bool](uma, `window.e2eNotReloaded === true`) {
		t.Error("the browser reloaded the page; the app should reload only its data")
	}
	texts := eval[[]string](uma, `[...document.querySelectorAll('#message-list .msg .text')].map(e => e.textContent)`)
	if len(texts) != missed+1 {
		t.Errorf("after the reset the page shows %q, want %d messages once each", texts, missed+1)
	}
	uma.checkConsole()
}

// testLargeRoom: above --large-room members the server sends counts instead
// of per-user notices; the page shows them, and fetches the member list only
// when asked, a page at a time: not when the room opens, not after a
// reload, not on a count's change.
func testLargeRoom(t *testing.T, browser context.Context, bin string) {
	const others = 51 // more than a page of members, and more than the page lists unasked
	srv := startServer(t, bin, "--large-room", "2")
	rec := startRecorder(t, srv.url())
	lars := newUser(t, browser, rec.url(), "lars")
	lars.login("lars", "lars-password")
	lars.join("big")
	var first *apiClient
	for i := 1; i <= others; i++ {
		c := login(t, srv.url(), fmt.Sprintf("m%02d", i), "member-password")
		if err := c.do(context.Background(), "POST", "/api/rooms/big/join", nil, nil); err != nil {
			t.Fatalf("m%02d joining: %v", i, err)
		}
		if first == nil {
			first = c
		}
	}
	// They have no stream open: lars is the only one online.
	title := func(members, online int) string {
		return fmt.Sprintf(`document.getElementById('members-title').textContent === 'Members (%d, %d online)'`, members, online)
	}
	lars.wait("the counts in the members title", title(others+1, 1))

	reloaded := time.Now()
	lars.do("reloading", chromedp.Reload())
	lars.waitLive()
	lars.waitView("#big")
	lars.wait("the counts after a reload", title(others+1, 1))
	lars.wait("a button to show the members", `(() => { const b = document.getElementById('more-members'); return !b.hidden && b.textContent === 'Show members'; })()`)
	s := first.stream(t)
	lars.wait("a count's change", title(others+1, 2))
	s.Close()
	lars.say("hello, big room")
	lars.waitMessage("hello, big room")
	if got := rec.requests(reloaded, "GET", "/api/rooms/big/members"); len(got) != 0 {
		t.Errorf("opening the large room fetched its members %d times (%s), want none until asked", len(got), got[0].path)
	}

	// On demand: a page, then the next.
	lars.click("show members", "#more-members")
	lars.wait("the first page of members", `document.querySelectorAll('#member-list li').length === 50 && document.getElementById('more-members').textContent === 'More members'`)
	lars.click("more members", "#more-members")
	lars.wait("every member", fmt.Sprintf(`document.querySelectorAll('#member-list li').length === %d && document.getElementById('more-members').hidden`, others+1))
	pages := rec.requests(reloaded, "GET", "/api/rooms/big/members")
	if len(pages) != 2 || !strings.Contains(pages[1].path, "after=") {
		t.Errorf("member pages fetched: %v, want two, the second with after=", pages)
	}
	lars.checkConsole()
}
