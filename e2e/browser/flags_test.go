package browser

// Tests that need a server of their own, started with non-default flags.

import (
	"context"
	"fmt"
	"testing"
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
// of per-user notices; the page shows them.
func testLargeRoom(t *testing.T, browser context.Context, bin string) {
	srv := startServer(t, bin, "--large-room", "2")
	lars := newUser(t, browser, srv.url(), "lars")
	lars.login("lars", "lars-password")
	lars.join("big")
	for _, name := range []string{"ann", "ben", "cal"} {
		c := login(t, srv.url(), name, name+"-password")
		if err := c.do(context.Background(), "POST", "/api/rooms/big/join", nil, nil); err != nil {
			t.Fatalf("%s joining: %v", name, err)
		}
	}
	// The three have no stream open: lars is the only one online.
	lars.wait("the counts in the members title", `document.getElementById('members-title').textContent === 'Members (4, 1 online)'`)
	lars.say("hello, big room")
	lars.waitMessage("hello, big room")
	lars.checkConsole()
}
