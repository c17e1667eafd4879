package browser

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// testModules checks the client's pure helpers inside the browser, where
// they run: ids past 2^53 keep their order, timelines drop duplicates, and
// mentions are found (and rendered as text) the way people write them.
func testModules(t *testing.T, browser context.Context, base string) {
	p := newUser(t, browser, base, "modules")
	p.open("/")
	p.wait("the page", `document.body.dataset.view === 'login'`)
	type result struct {
		Big      int      `json:"big"`
		Order    []string `json:"order"`
		Held     int      `json:"held"`
		Oldest   string   `json:"oldest"`
		Trimmed  []string `json:"trimmed"`
		Mentions []string `json:"mentions"`
		HTML     string   `json:"html"`
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	got, err := chromedp.Run(ctx, chromedp.Evaluate[result](`(async () => {
		const { Timeline, compareIds } = await import('/js/timeline.js');
		const { mentionsOf, richText } = await import('/js/dom.js');
		const tl = new Timeline();
		for (const id of ['3', '1', '2', '2', '9007199254740993', '9007199254740992']) {
			tl.insert({ id, kind: 'message', data: {} });
		}
		tl.insert({ id: '1', kind: 'join', data: {} });
		const small = new Timeline();
		for (const id of ['1', '2', '3', '4']) small.insert({ id, kind: 'message', data: {} });
		small.hasMore = false;
		small.trimOldest(2);
		const again = small.insert({ id: '1', kind: 'message', data: {} }); // history brings it back
		const trimmed = [String(small.hasMore), String(again), ...small.entries.map((e) => e.id)];
		const div = richText(document.createElement('div'), '<b>hi</b> @bob & @ME', 'me');
		return {
			big: compareIds('9007199254740993', '9007199254740992'),
			order: tl.entries.map((e) => e.kind + ':' + e.id),
			held: tl.entries.length,
			oldest: tl.oldestMessageId(),
			trimmed,
			mentions: mentionsOf('hi @bob, mail x@example.com or @carol-2! @@dave (@eve)'),
			html: div.innerHTML,
		};
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluating the modules: %v", err)
	}
	want := result{
		Big:      1,
		Order:    []string{"message:1", "join:1", "message:2", "message:3", "message:9007199254740992", "message:9007199254740993"},
		Held:     6,
		Oldest:   "1",
		Trimmed:  []string{"true", "0", "1", "3", "4"},
		Mentions: []string{"bob", "carol-2", "dave", "eve"},
		HTML:     `&lt;b&gt;hi&lt;/b&gt; <span class="mention">@bob</span> &amp; <span class="mention me">@ME</span>`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("modules:\n got %+v\nwant %+v", got, want)
	}
}
