package browser

import (
	"context"
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/ssechat/ssechat/internal/chattest"
)

// testPresence: presence is live state beside the event log. Its events
// carry the stream's position as their id, so an offline and the online
// after it (with nothing logged between) share one id, and so does a
// presence event and the message before it: the page applies each. Nothing
// replays presence; after a reload the page learns who is online from the
// presence events that follow `ready`.
//
// ivy is a script whose stream the test opens and closes; jon is a page.
func testPresence(t *testing.T, browser context.Context, base string) {
	ivy := login(t, base, "ivy", "ivy-password")
	if err := ivy.do(context.Background(), "POST", "/api/rooms/porch/join", nil, nil); err != nil {
		t.Fatalf("ivy joining: %v", err)
	}
	jon := newUser(t, browser, base, "jon")
	jon.login("jon", "jon-password")
	jon.join("porch")
	jon.wait("ivy offline before her stream opens", memberIs("ivy", false))

	// Online, offline, online again: nothing logged between, one id for all.
	s := ivy.stream(t)
	jon.wait("ivy online", memberIs("ivy", true))
	s.Close()
	jon.wait("ivy offline once her stream closed", memberIs("ivy", false))
	s = ivy.stream(t)
	jon.wait("ivy online again", memberIs("ivy", true))

	// After a message, presence carries that message's id.
	ivy.send(t, "porch", "brb")
	jon.waitMessage("brb")
	s.Close()
	jon.wait("ivy offline after her message", memberIs("ivy", false))
	s = ivy.stream(t)
	jon.wait("ivy online after her message", memberIs("ivy", true))

	// A reload into the conversation with ivy: no member list is fetched
	// there, so her dot can only come from the stream's snapshot.
	jon.click("ivy in the members list", `#member-list li[data-user="ivy"] a`)
	jon.waitView("@ivy")
	jon.do("reloading", chromedp.Reload())
	jon.waitLive()
	jon.waitView("@ivy")
	jon.wait("ivy online after a reload", memberIs("ivy", true)+
		` && !!document.querySelector('#dm-list a[data-user="ivy"] .dot.online')`)
	s.Close()
	jon.wait("ivy offline in the conversation", memberIs("ivy", false)+
		` && !document.querySelector('#dm-list a[data-user="ivy"] .dot.online')`)

	// A reload while she is away: the snapshot names jon, not ivy.
	jon.click("the porch", `#room-list a[data-room="porch"]`)
	jon.waitView("#porch")
	jon.do("reloading", chromedp.Reload())
	jon.waitLive()
	jon.waitView("#porch")
	jon.wait("jon online and ivy offline after a reload", memberIs("jon", true)+" && "+memberIs("ivy", false))
	s = ivy.stream(t)
	jon.wait("ivy back", memberIs("ivy", true))
	s.Close()
	jon.checkConsole()
}

// stream opens c's event stream as a script would and waits for its ready
// event; the stream closes on Close or when the test ends.
func (c *apiClient) stream(t *testing.T) *chattest.Stream {
	t.Helper()
	req, err := http.NewRequest("GET", c.base+"/api/stream", nil)
	if err != nil {
		t.Fatalf("stream request: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	s := chattest.OpenStream(t, req)
	s.Ready()
	return s
}
