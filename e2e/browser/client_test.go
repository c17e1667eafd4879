package browser

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// testOfflineQueue: what is typed while the page is offline waits in the
// outbox, shown as not sent yet, and is sent once the stream is live again:
// one POST with an Idempotency-Key, one message for everyone.
func testOfflineQueue(t *testing.T, browser context.Context, srv *chatServer) {
	drop := startProxy(t, srv.addr)
	rec := startRecorder(t, drop.url())
	olga := newUser(t, browser, rec.url(), "olga")
	olga.login("olga", "olga-password")
	olga.join("outbox")
	pete := login(t, srv.url(), "pete", "pete-password")
	if err := pete.do(context.Background(), "POST", "/api/rooms/outbox/join", nil, nil); err != nil {
		t.Fatalf("pete joining: %v", err)
	}
	olga.say("before the drop")
	olga.waitMessage("before the drop")
	olga.wait("the outbox empty", `document.querySelectorAll('#outbox-list li').length === 0`)

	drop.setDown(true)
	olga.wait("the reconnecting state", `document.body.dataset.conn === 'reconnecting'`)
	cut := time.Now()
	olga.say("typed while offline")
	olga.wait("the message waiting in the outbox", `[...document.querySelectorAll('#outbox-list .pending .text')].some(e => e.textContent === 'typed while offline')`)
	if got := historyTexts(t, pete, "outbox"); fmt.Sprint(got) != "[before the drop]" {
		t.Fatalf("while olga is offline the room holds %q", got)
	}

	drop.setDown(false)
	olga.waitLive()
	olga.waitMessage("typed while offline")
	olga.wait("the outbox empty", `document.querySelectorAll('#outbox-list li').length === 0`)
	if c := eval[int](olga, countMessages("typed while offline")); c != 1 {
		t.Errorf("olga's page shows the message %d times, want once", c)
	}
	if got := historyTexts(t, pete, "outbox"); fmt.Sprint(got) != "[before the drop typed while offline]" {
		t.Errorf("after the reconnect the room holds %q, want the message once", got)
	}
	posts := rec.requests(cut, "POST", "/api/rooms/outbox/messages")
	if len(posts) != 1 || len(posts[0].key) != 36 {
		t.Errorf("POSTs after the drop: %+v, want one with an Idempotency-Key (a UUID)", posts)
	}
	olga.checkConsole()
}

// testLostAnswer: exactly once from the browser. The answer to a message's
// POST is lost after the server stored it (the recorder answers nothing
// and closes the connection, however often the browser itself resends
// it), so the page cannot know the message was stored. The outbox tries
// again with the same Idempotency-Key; the server answers that repeat 200
// with the original event, which the outbox takes as sent. The message is
// then stored once, and shown once to its sender and to another user.
func testLostAnswer(t *testing.T, browser context.Context, srv *chatServer) {
	rec := startRecorder(t, srv.url())
	const room = "lost-answer"
	path := "/api/rooms/" + room + "/messages"
	lara := newUser(t, browser, rec.url(), "lara")
	lara.login("lara", "lara-password")
	lara.join(room)
	mo := newUser(t, browser, srv.url(), "mo")
	mo.login("mo", "mo-password")
	mo.join(room)
	lara.say("answered")
	mo.waitMessage("answered")

	from := time.Now()
	rec.loseAnswers(func(method, p string) bool { return method == "POST" && p == path })
	lara.say("exactly once")
	// The try failed as far as the page can tell: the message waits in
	// the outbox to be tried again...
	lara.wait("the message back in the outbox after a lost answer", `[...document.querySelectorAll('#outbox-list .pending')].some(e =>
		e.querySelector('.text').textContent === 'exactly once' && e.querySelector('.pending-state').textContent !== 'Sending…')`)
	// ...although the server stored it.
	lost := rec.requests(from, "POST", path)
	if len(lost) == 0 || !lost[0].lost || lost[0].status != http.StatusCreated {
		t.Fatalf("POSTs while answers were lost: %+v, want the first stored (201) and its answer lost", lost)
	}
	rec.loseAnswers(nil)

	lara.wait("the outbox empty after the retry", `document.querySelectorAll('#outbox-list li').length === 0`)
	lara.waitMessage("exactly once")
	mo.waitMessage("exactly once")
	lara.say("after it")
	mo.waitMessage("after it")
	lara.waitMessage("after it")

	// Chromium resends a POST whose connection closed without an answer
	// by itself, a few times, with the same headers: every try after the
	// first must have been answered 200, the original, and the last one,
	// the outbox's own after the page saw the failure, reached the page.
	var same []seenRequest
	for _, p := range rec.requests(from, "POST", path) {
		if p.key == lost[0].key {
			same = append(same, p)
		}
	}
	if len(lost[0].key) != 36 {
		t.Errorf("the first POST's Idempotency-Key is %q, want a UUID", lost[0].key)
	}
	for i, p := range same[1:] {
		if p.status != http.StatusOK {
			t.Errorf("try %d with the same key was answered %d, want 200 (the stored original)", i+2, p.status)
		}
	}
	if last := same[len(same)-1]; len(same) < 2 || last.lost {
		t.Errorf("no resend with the same key reached the page: %+v", same)
	}
	want := "[answered exactly once after it]"
	if got := historyTexts(t, login(t, srv.url(), "mo", "mo-password"), room); fmt.Sprint(got) != want {
		t.Errorf("the room holds %q, want %s: the message stored once", got, want)
	}
	for _, p := range []*page{lara, mo} {
		if c := eval[int](p, countMessages("exactly once")); c != 1 {
			t.Errorf("%s's page shows the message %d times, want once", p.Name, c)
		}
		texts := eval[[]string](p, `[...document.querySelectorAll('#message-list .msg .text')].map(e => e.textContent)`)
		if fmt.Sprint(texts) != want {
			t.Errorf("%s's page shows %q, want %s", p.Name, texts, want)
		}
		p.checkConsole()
	}
}

func historyTexts(t *testing.T, c *apiClient, room string) []string {
	t.Helper()
	var page struct {
		Messages []struct {
			Text string `json:"text"`
		} `json:"messages"`
	}
	if err := c.do(context.Background(), "GET", "/api/rooms/"+url.PathEscape(room)+"/messages?limit=50", nil, &page); err != nil {
		t.Fatalf("reading %s's history: %v", room, err)
	}
	texts := []string{}
	for _, m := range page.Messages {
		texts = append(texts, m.Text)
	}
	return texts
}

// testBidi: a message's text is isolated from what is around it and the
// bidi controls in it reorder nothing, so "abc\u202Egnp.exe" does not
// read as "abcexe.png"; a lone "\r" breaks the line as "\n" does.
func testBidi(t *testing.T, browser context.Context, base string) {
	bea := newUser(t, browser, base, "bea")
	bea.login("bea", "bea-password")
	bea.join("scripts")
	cid := login(t, base, "cid", "cid-password")
	if err := cid.do(context.Background(), "POST", "/api/rooms/scripts/join", nil, nil); err != nil {
		t.Fatalf("cid joining: %v", err)
	}
	cid.send(t, "scripts", "abc\u202Egnp.exe")
	cid.send(t, "scripts", "one\rtwo")
	cid.send(t, "scripts", "single line")
	bea.waitMessage("abc\u202Egnp.exe")
	bea.waitMessage("one\ntwo")
	bea.waitMessage("single line")

	type layout struct {
		Dir        string  `json:"dir"`
		Isolated   string  `json:"isolated"`
		ControlBox string  `json:"controlBox"`
		G          float64 `json:"g"`
		X          float64 `json:"x"`
		Lines      float64 `json:"lines"`
		Inner      string  `json:"inner"`
	}
	got := eval[layout](bea, `(() => {
		const texts = [...document.querySelectorAll('#message-list .msg .text')];
		const spoof = texts.find((e) => e.textContent === 'abc\u202Egnp.exe');
		const ctl = spoof.querySelector('.bidi-control');
		const after = ctl.nextSibling; // the Text node "gnp.exe"
		const at = (node, i) => { const r = document.createRange(); r.setStart(node, i); r.setEnd(node, i + 1); return r.getBoundingClientRect().left; };
		const two = texts.find((e) => e.textContent === 'one\ntwo');
		const one = texts.find((e) => e.textContent === 'single line');
		return {
			dir: spoof.getAttribute('dir'),
			isolated: getComputedStyle(spoof).unicodeBidi,
			controlBox: getComputedStyle(ctl).unicodeBidi,
			g: at(after, 0), x: at(after, 5),
			lines: two.getBoundingClientRect().height / one.getBoundingClientRect().height,
			inner: two.innerText,
		};
	})()`)
	if got.Dir != "auto" || got.Isolated != "isolate" {
		t.Errorf("the message text has dir=%q, unicode-bidi %q; want an isolate with dir=auto", got.Dir, got.Isolated)
	}
	if got.ControlBox != "isolate" {
		t.Errorf("the override character sits in unicode-bidi %q, want isolate", got.ControlBox)
	}
	if got.G >= got.X {
		t.Errorf("\"gnp.exe\" after the override is laid out right to left (g at %v, x at %v): it reads as \"exe.png\"", got.G, got.X)
	}
	if got.Lines < 1.8 || got.Inner != "one\ntwo" {
		t.Errorf("\"one\\rtwo\" shows as %q, %.1f lines high; want two lines", got.Inner, got.Lines)
	}
	bea.checkConsole()
}

// testRoomBrowser: every room on the server can be browsed, a page at a
// time, from GET /api/rooms, and joined from there.
func testRoomBrowser(t *testing.T, browser context.Context, base string) {
	const rooms = 55 // more than a page
	rex := login(t, base, "rex", "rex-password")
	for i := 1; i <= rooms; i++ {
		if err := rex.do(context.Background(), "POST", fmt.Sprintf("/api/rooms/zz-browse-%02d/join", i), nil, nil); err != nil {
			t.Fatalf("rex creating a room: %v", err)
		}
	}
	ida := newUser(t, browser, base, "ida")
	ida.login("ida", "ida-password")
	ida.join("aa-browse-home")
	ida.click("browse all rooms", "#browse-rooms")
	ida.wait("the room browser with a first page", `document.getElementById('room-browser').open && document.querySelectorAll('#browse-list li').length === 50 && !document.getElementById('browse-more').hidden`)
	ida.wait("her own room offered to open", `document.querySelector('#browse-list button[data-room="aa-browse-home"]').dataset.action === 'open'`)
	last := fmt.Sprintf("zz-browse-%02d", rooms)
	for eval[bool](ida, `!document.querySelector('#browse-list li[data-room="`+last+`"]')`) {
		ida.click("more rooms", "#browse-more")
		ida.wait("the next page", `document.getElementById('browse-more').textContent !== 'Loading…'`)
	}
	ida.wait("the count of a room", `document.querySelector('#browse-list li[data-room="`+last+`"] .count').textContent === '1 member'`)
	ida.click("join "+last, `#browse-list button[data-room="`+last+`"]`)
	ida.waitView("#" + last)
	ida.wait("the browser closed and the room in the sidebar", `!document.getElementById('room-browser').open && !!document.querySelector('#room-list a[data-room="`+last+`"]')`)
	ida.wait("two members", `document.getElementById('members-title').textContent === 'Members (2)'`)
	ida.checkConsole()
}

// testReadMarkers: one person on two devices (two browser contexts). The
// unread counts come from the server, so they survive a reload, and reading
// a room or a conversation on one device clears it on the other.
func testReadMarkers(t *testing.T, browser context.Context, base string) {
	phone := newUser(t, browser, base, "rhea-phone")
	laptop := newUser(t, browser, base, "rhea-laptop")
	for _, p := range []*page{phone, laptop} {
		p.login("rhea", "rhea-password")
	}
	phone.join("shelf")
	phone.join("aaa-hall") // both devices stay in #aaa-hall, the first room
	laptop.do("reloading", chromedp.Reload())
	for _, p := range []*page{phone, laptop} {
		p.waitLive()
		p.waitView("#aaa-hall")
	}
	tom := login(t, base, "tom", "tom-password")
	if err := tom.do(context.Background(), "POST", "/api/rooms/shelf/join", nil, nil); err != nil {
		t.Fatalf("tom joining: %v", err)
	}
	for _, text := range []string{"one", "two", "three"} {
		tom.send(t, "shelf", text)
	}
	if err := tom.do(context.Background(), "POST", "/api/users/rhea/messages", map[string]string{"text": "psst"}, nil); err != nil {
		t.Fatalf("tom writing to rhea: %v", err)
	}
	roomBadge := `(document.querySelector('#room-list a[data-room="shelf"] .badge') || {}).textContent`
	dmBadge := `(document.querySelector('#dm-list a[data-user="tom"] .badge') || {}).textContent`
	for _, p := range []*page{phone, laptop} {
		p.wait("three unread in #shelf and one from tom", roomBadge+` === '3' && `+dmBadge+` === '1'`)
	}
	laptop.do("reloading", chromedp.Reload())
	laptop.waitLive()
	laptop.wait("the counts after a reload", roomBadge+` === '3' && `+dmBadge+` === '1'`)

	phone.click("#shelf", `#room-list a[data-room="shelf"]`)
	phone.waitView("#shelf")
	phone.waitMessage("three")
	laptop.wait("#shelf read on the other device", `!document.querySelector('#room-list a[data-room="shelf"] .badge')`)
	if got := eval[string](laptop, dmBadge); got != "1" {
		t.Errorf("the conversation with tom shows %q unread on the laptop, want 1", got)
	}
	phone.click("the conversation with tom", `#dm-list a[data-user="tom"]`)
	phone.waitView("@tom")
	phone.waitMessage("psst")
	laptop.wait("the conversation read on the other device", `!document.querySelector('#dm-list a[data-user="tom"] .badge')`)
	laptop.do("reloading", chromedp.Reload())
	laptop.waitLive()
	laptop.waitView("#aaa-hall")
	laptop.wait("nothing unread after a reload", `!document.querySelector('#room-list .badge, #dm-list .badge') && document.title === 'ssechat'`)
	for _, p := range []*page{phone, laptop} {
		p.checkConsole()
	}
}
