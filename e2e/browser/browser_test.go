// Package browser holds end-to-end tests of the web client: the real server
// binary, driven through a headless Chromium as people would use it.
package browser

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// update rewrites the screenshots in docs/ (go test ./e2e/browser -update).
// Without it they are written only when missing, so that a plain test run
// leaves the working tree clean.
var update = flag.Bool("update", false, "rewrite docs/screenshot*.png")

func TestBrowser(t *testing.T) {
	browser := newBrowser(t) // skips when there is no Chromium
	bin := buildServer(t)
	srv := startServer(t, bin)

	t.Run("ClientModules", func(t *testing.T) { testModules(t, browser, srv.url()) })
	t.Run("ChatBetweenUsers", func(t *testing.T) { testChat(t, browser, srv.url()) })
	t.Run("Sidebar", func(t *testing.T) { testSidebar(t, browser, srv.url()) })
	t.Run("LivePresence", func(t *testing.T) { testPresence(t, browser, srv.url()) })
	t.Run("HTMLIsShownAsText", func(t *testing.T) { testHTMLIsText(t, browser, srv.url()) })
	t.Run("Keyboard", func(t *testing.T) { testKeyboard(t, browser, srv.url()) })
	t.Run("ScrollBack", func(t *testing.T) { testScrollBack(t, browser, srv.url()) })
	t.Run("PhoneScreen", func(t *testing.T) { testPhone(t, browser, srv.url()) })
	t.Run("TenTabs", func(t *testing.T) { testTenTabs(t, browser, srv.url()) })
	t.Run("LeaderTabsWithoutSharedWorker", func(t *testing.T) { testLeaderTabs(t, browser, srv.url()) })
	t.Run("DirectTransport", func(t *testing.T) { testDirect(t, browser, srv.url()) })
	t.Run("ResumeAfterNetworkDrop", func(t *testing.T) { testResume(t, browser, srv) })
	t.Run("ResetWhenTooFarBehind", func(t *testing.T) { testReset(t, browser, bin) })
	t.Run("LargeRoomOnDemand", func(t *testing.T) { testLargeRoom(t, browser, bin) })
	t.Run("OfflineQueue", func(t *testing.T) { testOfflineQueue(t, browser, srv) })
	t.Run("ExactlyOnceWhenAnAnswerIsLost", func(t *testing.T) { testLostAnswer(t, browser, srv) })
	t.Run("BidiAndLineBreaks", func(t *testing.T) { testBidi(t, browser, srv.url()) })
	t.Run("RoomBrowser", func(t *testing.T) { testRoomBrowser(t, browser, srv.url()) })
	t.Run("ReadMarkersAcrossDevices", func(t *testing.T) { testReadMarkers(t, browser, srv.url()) })
	// These two restart the server, on the same port and database.
	t.Run("PlainEventSource", func(t *testing.T) { testEventSource(t, browser, srv) })
	// Last: it kills the server.
	t.Run("ReconnectAfterRestart", func(t *testing.T) { testRestart(t, browser, srv) })
}

// testChat: three people in a room; messages, a mention, a private message
// that the third never sees, presence that follows a logout, a reload that
// keeps the session.
func testChat(t *testing.T, browser context.Context, base string) {
	alice := newUser(t, browser, base, "alice")
	bob := newUser(t, browser, base, "bob")
	carol := newUser(t, browser, base, "carol")
	for _, p := range []*page{alice, bob, carol} {
		p.login(p.Name, p.Name+"-password")
		p.join("lobby")
	}
	alice.wait("bob and carol online", memberIs("bob", true)+" && "+memberIs("carol", true))

	alice.say("hello bob")
	bob.waitMessage("hello bob")
	alice.wait("her own message set apart", `[...document.querySelectorAll('#message-list .msg.mine .text')].some(e => e.textContent === 'hello bob')`)

	bob.say("hi @alice, welcome to the lobby")
	alice.waitMessage("hi @alice, welcome to the lobby")
	alice.wait("the mention highlighted", `[...document.querySelectorAll('#message-list .msg.mentions-me .mention.me')].some(e => e.textContent === '@alice')`)
	carol.wait("the mention styled for others too", `[...document.querySelectorAll('#message-list .mention')].some(e => e.textContent === '@alice' && !e.classList.contains('me'))`)

	// "@name text" in a room is a private message; the server routes it.
	bob.say("@alice the secret plan")
	bob.wait("a note that it went privately", `!!document.querySelector('#message-list .note')`)
	alice.wait("an unread private conversation with bob", `!!document.querySelector('#dm-list a[data-user="bob"] .badge')`)
	bob.say("public after the secret")
	// One ordered stream: once carol has the later public message she would
	// have had the private one too, had it been sent to her.
	carol.waitMessage("public after the secret")
	if eval[bool](carol, `document.body.textContent.includes('secret plan')`) {
		t.Error("carol sees bob's private message to alice")
	}
	if n := eval[int](carol, `document.querySelectorAll('#dm-list a').length`); n != 0 {
		t.Errorf("carol has %d private conversations, want 0", n)
	}
	alice.waitMessage("public after the secret")

	writeScreenshot(t, alice, "screenshot.png")

	alice.click("the conversation with bob", `#dm-list a[data-user="bob"]`)
	alice.waitView("@bob")
	// The server sends the text after the "@alice " prefix.
	alice.wait("bob's private message", `[...document.querySelectorAll('#message-list .msg.private .text')].some(e => e.textContent.endsWith('the secret plan'))`)
	alice.say("got it, thanks")
	bob.wait("the conversation with alice listed", `!!document.querySelector('#dm-list a[data-user="alice"]')`)
	bob.click("the conversation with alice", `#dm-list a[data-user="alice"]`)
	bob.waitView("@alice")
	bob.waitMessage("got it, thanks")
	if eval[bool](carol, `document.body.textContent.includes('got it, thanks')`) {
		t.Error("carol sees alice's private reply")
	}

	// Presence follows live: carol logs out, alice sees her dot go grey.
	alice.click("the lobby", `#room-list a[data-room="lobby"]`)
	alice.waitView("#lobby")
	alice.wait("carol online", memberIs("carol", true))
	carol.click("log out", "#logout")
	carol.wait("the login form", `document.body.dataset.view === 'login'`)
	alice.wait("carol offline", memberIs("carol", false))

	// The session survives a reload, and so does the room list.
	bob.do("reloading", chromedp.Reload())
	bob.waitLive()
	bob.wait("the lobby listed after a reload", `!!document.querySelector('#room-list a[data-room="lobby"]')`)
	// The private conversation comes back from history, opened from the
	// members list this time.
	bob.click("the lobby", `#room-list a[data-room="lobby"]`)
	bob.waitView("#lobby")
	bob.click("alice in the members list", `#member-list li[data-user="alice"] a`)
	bob.waitView("@alice")
	bob.waitMessage("got it, thanks")

	// A wrong password is refused with a clear message.
	carol.do("logging in with a wrong password",
		chromedp.Evaluate[chromedp.Void](`document.getElementById('login-username').value = ''`),
		chromedp.SendKeys(chromedp.ID("login-username"), "alice"),
		chromedp.SendKeys(chromedp.ID("login-password"), "not-her-password"),
		chromedp.Click(chromedp.ID("login-submit")))
	carol.wait("the wrong-password error", `(() => { const e = document.getElementById('login-error'); return !e.hidden && /password/i.test(e.textContent); })()`)

	for _, p := range []*page{alice, bob, carol} {
		p.checkConsole()
	}
}

// testSidebar: unread counts on rooms and conversations, leaving a room,
// and a clear error for a private message to nobody.
func testSidebar(t *testing.T, browser context.Context, base string) {
	una := newUser(t, browser, base, "una")
	una.login("una", "una-password")
	una.join("two")
	una.join("one") // the view stays on #one
	walt := login(t, base, "walt", "walt-password")
	for _, room := range []string{"one", "two"} {
		if err := walt.do(context.Background(), "POST", "/api/rooms/"+room+"/join", nil, nil); err != nil {
			t.Fatalf("walt joining %s: %v", room, err)
		}
	}
	walt.send(t, "two", "first unread")
	walt.send(t, "two", "second unread")
	badge := `(document.querySelector('#room-list a[data-room="two"] .badge') || {}).textContent`
	una.wait("two unread in #two", badge+` === '2'`)
	walt.send(t, "two", "hey @una")
	una.wait("a mention makes the badge strong", badge+` === '3' && document.querySelector('#room-list a[data-room="two"] .badge').classList.contains('strong')`)
	walt.send(t, "one", "in the open room")
	una.waitMessage("in the open room")
	if got := eval[bool](una, `!!document.querySelector('#room-list a[data-room="one"] .badge')`); got {
		t.Error("the open room shows an unread badge")
	}
	una.click("#two", `#room-list a[data-room="two"]`)
	una.waitView("#two")
	una.waitMessage("hey @una")
	una.wait("the badge gone once read", `!document.querySelector('#room-list a[data-room="two"] .badge')`)

	// Leaving: the room leaves the sidebar and the member list of others.
	una.click("leave", "#leave-room")
	una.wait("#two gone from the sidebar", `!document.querySelector('#room-list a[data-room="two"]')`)
	una.waitView("#one")
	var members struct {
		Members []struct {
			Username string `json:"username"`
		} `json:"members"`
	}
	if err := walt.do(context.Background(), "GET", "/api/rooms/two/members", nil, &members); err != nil {
		t.Fatalf("walt reading #two's members: %v", err)
	}
	for _, m := range members.Members {
		if m.Username == "una" {
			t.Error("una is still a member of #two after leaving")
		}
	}

	// The join field suggests rooms we are not in.
	if err := walt.do(context.Background(), "POST", "/api/rooms/three/join", nil, nil); err != nil {
		t.Fatalf("walt joining three: %v", err)
	}
	una.do("focusing the join field", chromedp.Focus(chromedp.ID("join-room")))
	una.wait("#three suggested, #one not", `!!document.querySelector('#room-suggestions option[value="three"]') && !document.querySelector('#room-suggestions option[value="one"]')`)

	// A private message: unread until opened.
	if err := walt.do(context.Background(), "POST", "/api/users/una/messages", map[string]string{"text": "psst"}, nil); err != nil {
		t.Fatalf("walt writing to una: %v", err)
	}
	una.wait("an unread conversation with walt", `(document.querySelector('#dm-list a[data-user="walt"] .badge') || {}).textContent === '1'`)

	// To nobody: a clear error, the text kept.
	una.do("opening a conversation with nobody",
		chromedp.SendKeys(chromedp.ID("dm-user"), "nobody-here\n"))
	una.waitView("@nobody-here")
	una.do("writing to nobody",
		chromedp.SendKeys(chromedp.ID("composer-text"), "hello?"),
		pressEnter())
	una.wait("the no-such-user error", `(() => { const e = document.getElementById('composer-error'); return !e.hidden && e.textContent.includes('nobody-here'); })()`)
	if v := eval[string](una, `document.getElementById('composer-text').value`); v != "hello?" {
		t.Errorf("the composer holds %q after a failed send, want the text kept", v)
	}
	una.checkConsole()
}

func testHTMLIsText(t *testing.T, browser context.Context, base string) {
	mallory := newUser(t, browser, base, "mallory")
	victor := newUser(t, browser, base, "victor")
	for _, p := range []*page{mallory, victor} {
		p.login(p.Name, "pw-"+p.Name)
		p.join("xss")
	}
	payloads := []string{
		`<img src=x onerror=alert(1)>`,
		`<b>bold?</b> <script>alert(2)</script> &amp; "quotes"`,
	}
	for _, s := range payloads {
		mallory.say(s)
		victor.waitMessage(s)
	}
	if n := eval[int](victor, `document.querySelectorAll('#message-list img, #message-list script, #message-list b').length`); n != 0 {
		t.Errorf("victor's message list holds %d elements made from message text", n)
	}

	// Nothing a script could steal: the session cookie is HttpOnly and the
	// page keeps nothing in web storage.
	if got := eval[string](victor, `document.cookie`); strings.Contains(got, "session") {
		t.Errorf("document.cookie shows the session: %q", got)
	}
	if n := eval[int](victor, `localStorage.length + sessionStorage.length`); n != 0 {
		t.Errorf("the page keeps %d items in web storage, want none", n)
	}
	// The page is served with a CSP that forbids inline script.
	ctx, cancel := context.WithTimeout(victor.Ctx, waitTimeout)
	defer cancel()
	res, err := chromedp.Run(ctx, chromedp.NavigateResponse(base+"/"))
	if err != nil {
		t.Fatalf("reloading: %v", err)
	}
	csp := ""
	for k, v := range res.Headers {
		if strings.EqualFold(k, "Content-Security-Policy") {
			csp = fmt.Sprint(v)
		}
	}
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("the page's Content-Security-Policy is %q; want script-src 'self' and no unsafe-inline", csp)
	}
	for _, p := range []*page{mallory, victor} {
		p.checkConsole()
	}
}

// testKeyboard: Enter sends, Shift+Enter starts a new line.
func testKeyboard(t *testing.T, browser context.Context, base string) {
	kim := newUser(t, browser, base, "kim")
	kim.login("kim", "kim-password")
	kim.join("keys")
	kim.do("typing two lines",
		chromedp.SendKeys(chromedp.ID("composer-text"), "line one"),
		chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierShift)),
		chromedp.SendKeys(chromedp.ID("composer-text"), "line two"),
	)
	if v := eval[string](kim, `document.getElementById('composer-text').value`); v != "line one\nline two" {
		t.Fatalf("composer holds %q after Shift+Enter, want two lines", v)
	}
	kim.do("pressing Enter", pressEnter())
	kim.waitMessage("line one\nline two")
	kim.checkConsole()
}

// testDirect: with ?transport=direct (no sharing at all) the tab runs the
// stream itself; everything else is the same.
func testDirect(t *testing.T, browser context.Context, base string) {
	dee := newUser(t, browser, base, "dee")
	dee.loginAt("/?transport=direct", "dee", "dee-password")
	dee.join("solo")
	if kind := eval[string](dee, `document.body.dataset.transport`); kind != "direct" {
		t.Fatalf("stream transport is %q, want direct", kind)
	}
	fay := login(t, base, "fay", "fay-password")
	if err := fay.do(context.Background(), "POST", "/api/rooms/solo/join", nil, nil); err != nil {
		t.Fatalf("fay joining: %v", err)
	}
	fay.send(t, "solo", "straight to you")
	dee.waitMessage("straight to you")
	dee.checkConsole()
}

// testScrollBack: a reloaded page shows the newest page of history and loads
// older ones as the reader scrolls up, in order and without duplicates.
func testScrollBack(t *testing.T, browser context.Context, base string) {
	const total = 120
	reader := newUser(t, browser, base, "reader")
	reader.login("reader", "reader-password")
	reader.join("archive")

	writer := login(t, base, "writer", "writer-password")
	if err := writer.do(context.Background(), "POST", "/api/rooms/archive/join", nil, nil); err != nil {
		t.Fatalf("writer joining: %v", err)
	}
	for i := 1; i <= total; i++ {
		writer.send(t, "archive", fmt.Sprintf("archive %03d", i))
	}
	reader.waitMessage(fmt.Sprintf("archive %03d", total))

	reader.do("reloading", chromedp.Reload())
	reader.waitLive()
	reader.waitView("#archive")
	reader.waitMessage(fmt.Sprintf("archive %03d", total))
	if n := eval[int](reader, `document.querySelectorAll('#message-list .msg').length`); n >= total {
		t.Fatalf("a fresh page holds %d of %d messages; want one page, not all", n, total)
	}

	// Scroll to the top, again and again, until the first message shows.
	reader.wait("the first message after scrolling up", `(() => {
		const box = document.getElementById('messages');
		box.scrollTop = 0;
		box.dispatchEvent(new Event('scroll'));
		return `+countMessages("archive 001")+` === 1;
	})()`)
	reader.wait("the beginning of the room", `document.getElementById('history-status').textContent.startsWith('This is the beginning')`)
	texts := eval[[]string](reader, `[...document.querySelectorAll('#message-list .msg .text')].map(e => e.textContent).filter(s => s.startsWith('archive '))`)
	if len(texts) != total {
		t.Fatalf("after scrolling back the page holds %d archive messages, want %d", len(texts), total)
	}
	for i, s := range texts {
		if want := fmt.Sprintf("archive %03d", i+1); s != want {
			t.Fatalf("message %d is %q, want %q (out of order or duplicated)", i, s, want)
		}
	}

	// Reading old messages, a new one does not yank the view down: a button
	// offers to jump.
	writer.send(t, "archive", "news while reading")
	reader.waitMessage("news while reading")
	reader.wait("the jump button", `!document.getElementById('jump-latest').hidden && document.getElementById('messages').scrollTop < 200`)
	reader.click("the jump button", "#jump-latest")
	reader.wait("the newest message in view", `(() => { const b = document.getElementById('messages'); return b.scrollHeight - b.scrollTop - b.clientHeight < 80 && document.getElementById('jump-latest').hidden; })()`)
	reader.checkConsole()
}

// testPhone: on a phone-sized screen the sidebar is a drawer.
func testPhone(t *testing.T, browser context.Context, base string) {
	pia := newUser(t, browser, base, "pia")
	pia.do("emulating a phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	pia.login("pia", "pia-password")
	hidden := `getComputedStyle(document.getElementById('sidebar')).visibility === 'hidden'`
	pia.wait("the sidebar folded away", hidden)
	pia.click("the menu button", "#toggle-sidebar")
	pia.wait("the sidebar open", `getComputedStyle(document.getElementById('sidebar')).visibility === 'visible'`)
	pia.join("pocket")
	pia.wait("the sidebar closed after choosing a room", hidden)
	pia.say("hello from a phone")
	pia.waitMessage("hello from a phone")
	if w := eval[int](pia, `document.documentElement.scrollWidth`); w > 390 {
		t.Errorf("the page is %dpx wide on a 390px screen: it scrolls sideways", w)
	}
	// Every control has a name a screen reader can say.
	unnamed := eval[[]string](pia, `[...document.querySelectorAll('button, input, textarea, a[href]')].filter((e) => {
		const byLabel = e.labels && [...e.labels].some((l) => l.textContent.trim() !== '');
		return !byLabel && !(e.getAttribute('aria-label') || '').trim() && !e.textContent.trim();
	}).map((e) => e.outerHTML.slice(0, 80))`)
	if len(unnamed) > 0 {
		t.Errorf("controls without an accessible name: %q", unnamed)
	}
	// Dark mode, for the record.
	pia.do("preferring dark", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
		})
		return err
	}))
	pia.wait("dark colours", `getComputedStyle(document.body).backgroundColor === 'rgb(20, 23, 28)'`)
	writeScreenshot(t, pia, "screenshot-phone-dark.png")
	pia.checkConsole()
}

// testTenTabs: ten tabs of one user share one stream (browsers allow six
// connections per host) and all of them receive every message, once.
func testTenTabs(t *testing.T, browser context.Context, base string) {
	const n = 10
	first := newUser(t, browser, base, "tab-1")
	first.login("dora", "dora-password")
	first.join("tabs")
	tabs := []*page{first}
	for i := 2; i <= n; i++ {
		p := first.newTab(fmt.Sprintf("tab-%d", i))
		p.open("/#/room/tabs")
		tabs = append(tabs, p)
	}
	for _, p := range tabs {
		p.waitLive()
		p.waitView("#tabs")
		if kind := eval[string](p, `document.body.dataset.transport`); kind != "shared-worker" {
			t.Errorf("%s: stream transport is %q, want shared-worker", p.Name, kind)
		}
	}

	sam := login(t, base, "sam", "sam-password")
	if err := sam.do(context.Background(), "POST", "/api/rooms/tabs/join", nil, nil); err != nil {
		t.Fatalf("sam joining: %v", err)
	}
	sam.send(t, "tabs", "hello, all ten of you")
	tabs[6].say("sent from the seventh tab")
	for _, p := range tabs {
		p.waitMessage("hello, all ten of you")
		p.waitMessage("sent from the seventh tab")
	}
	for _, p := range tabs {
		if c := eval[int](p, countMessages("sent from the seventh tab")); c != 1 {
			t.Errorf("%s shows the message %d times, want once", p.Name, c)
		}
	}

	// Logging out in one tab logs out all of them.
	tabs[2].click("log out", "#logout")
	for _, p := range tabs {
		p.wait("the login form", `document.body.dataset.view === 'login'`)
		p.checkConsole()
	}
}

// testLeaderTabs: where SharedWorker is missing (Chrome on Android), tabs
// elect a leader that holds the stream and relays it over a
// BroadcastChannel. When the leader closes, the next tab takes over and
// resumes where the tabs had read up to.
func testLeaderTabs(t *testing.T, browser context.Context, base string) {
	// home owns the browser context and stays blank: closing it would close
	// every tab of the context. The tabs are its children.
	home := newUser(t, browser, base, "home")
	first := home.newTab("leader-1")
	first.loginAt("/?transport=leader", "lea", "lea-password")
	first.join("den")
	tabs := []*page{first}
	for i := 2; i <= 3; i++ {
		p := home.newTab(fmt.Sprintf("leader-%d", i))
		p.open("/?transport=leader#/room/den")
		tabs = append(tabs, p)
	}
	for _, p := range tabs {
		p.waitLive()
		p.waitView("#den")
		if kind := eval[string](p, `document.body.dataset.transport`); kind != "leader" {
			t.Fatalf("%s: stream transport is %q, want leader", p.Name, kind)
		}
	}
	max := login(t, base, "max", "max-password")
	if err := max.do(context.Background(), "POST", "/api/rooms/den/join", nil, nil); err != nil {
		t.Fatalf("max joining: %v", err)
	}
	max.send(t, "den", "one stream for three tabs")
	for _, p := range tabs {
		p.waitMessage("one stream for three tabs")
	}

	first.Close() // the leader: the lock passes to another tab
	max.send(t, "den", "after the leader left")
	for _, p := range tabs[1:] {
		p.waitMessage("after the leader left")
		p.waitLive()
		if c := eval[int](p, countMessages("after the leader left")); c != 1 {
			t.Errorf("%s shows the message %d times, want once", p.Name, c)
		}
		p.checkConsole()
	}
}

// testRestart: the server dies (SIGKILL) and comes back on the same port
// with the same database; the page shows that it is reconnecting, then
// catches up on what it missed without being reloaded.
//
// After the graceful stop the page waits at least the shutdown event's
// retry: before it asks again, and asks for the stream first: what a
// restarted server meets is spread out, not every page within a moment
// and each with a GET /api/me in front.
func testRestart(t *testing.T, browser context.Context, srv *chatServer) {
	base := srv.url()
	rec := startRecorder(t, base)
	rita := newUser(t, browser, rec.url(), "rita")
	rita.login("rita", "rita-password")
	rita.join("phoenix")
	sol := login(t, base, "sol", "sol-password")
	if err := sol.do(context.Background(), "POST", "/api/rooms/phoenix/join", nil, nil); err != nil {
		t.Fatalf("sol joining: %v", err)
	}
	sol.send(t, "phoenix", "before the crash")
	rita.waitMessage("before the crash")
	_ = eval[bool](rita, `window.e2eNotReloaded = true`)

	// A graceful stop first (the stream gets a shutdown event, retry: 1000),
	// then a crash.
	stopped := time.Now()
	srv.stop()
	rita.wait("the reconnecting state after a shutdown", `document.body.dataset.conn === 'reconnecting'`)
	srv.start()
	sol.send(t, "phoenix", "after the restart")
	rita.waitMessage("after the restart")
	rita.waitLive()
	streams := rec.requests(stopped, "GET", "/api/stream")
	if len(streams) == 0 {
		t.Fatal("no stream request recorded after the shutdown")
	}
	if wait := streams[0].at.Sub(stopped); wait < time.Second {
		t.Errorf("the page asked for the stream again %v after the shutdown; want no sooner than its retry: (1s)", wait)
	}
	if me := rec.requests(stopped, "GET", "/api/me"); len(me) > 0 && !me[0].at.After(streams[0].at) {
		t.Errorf("the page asked GET /api/me %v after the shutdown, before the stream", me[0].at.Sub(stopped))
	}

	srv.kill()
	rita.wait("the reconnecting state", `document.body.dataset.conn === 'reconnecting' && document.getElementById('conn-status').textContent.startsWith('Reconnecting')`)
	srv.start()
	// Posted before the page is back, most likely: it arrives through the
	// resume (ResumeAfterNetworkDrop tests that path deterministically).
	sol.send(t, "phoenix", "while you were away")
	rita.waitMessage("while you were away")
	rita.waitLive()
	sol.send(t, "phoenix", "live again")
	rita.waitMessage("live again")
	if !eval[bool](rita, `window.e2eNotReloaded === true`) {
		t.Error("the page was reloaded; it should catch up by itself")
	}
	for _, text := range []string{"before the crash", "after the restart", "while you were away", "live again"} {
		if c := eval[int](rita, countMessages(text)); c != 1 {
			t.Errorf("%q shows %d times, want once", text, c)
		}
	}
	rita.checkConsole()
}

// writeScreenshot saves what p shows to docs/name when -update is given or
// the file is missing; otherwise it only checks that a screenshot works.
func writeScreenshot(t *testing.T, p *page, name string) {
	t.Helper()
	buf, err := chromedp.Run(p.Ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if !bytes.HasPrefix(buf, []byte("\x89PNG")) {
		t.Fatalf("screenshot is not a PNG")
	}
	path := filepath.Join("..", "..", "docs", name)
	if _, err := os.Stat(path); err == nil && !*update {
		return
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
	t.Logf("wrote %s", path)
}
