package browser

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// testModules checks the client's pure helpers inside the browser, where
// they run: ids past 2^53 keep their order, timelines drop duplicates,
// mentions are found (and rendered as text) the way people write them, and
// live state (presence, member counts) is applied although its ids repeat.
func testModules(t *testing.T, browser context.Context, base string) {
	p := newUser(t, browser, base, "modules")
	p.open("/")
	p.wait("the page", `document.body.dataset.view === 'login'`)
	type result struct {
		Big      int        `json:"big"`
		Order    []string   `json:"order"`
		Held     int        `json:"held"`
		Oldest   string     `json:"oldest"`
		Trimmed  []string   `json:"trimmed"`
		Mentions []string   `json:"mentions"`
		HTML     string     `json:"html"`
		Live     liveResult `json:"live"`
	}
	ctx, cancel := context.WithTimeout(p.Ctx, 10*time.Second)
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
		const { LiveState } = await import('/js/live.js');
		const people = ['alice', 'bob', 'carol', 'dave', 'me'];
		const onlineIn = (s) => people.filter((n) => s.isOnline(n));

		// Presence carries the stream's position: the id of the message before it.
		const a = new LiveState();
		const presenceTook = [
			a.take('message', { id: '7', room: 'r', from: 'bob', text: 'hi' }),
			a.take('presence', { id: '7', user: 'Bob', status: 'online' }),
			a.take('presence', { id: '7', user: 'carol', status: 'online' }),
			a.take('message', { id: '7', room: 'r', from: 'bob', text: 'hi' }), // a duplicate
			a.take('presence', { id: '7', user: 'bob', status: 'offline' }),
		];

		// After a ready, the snapshot is the truth: anyone it leaves out is offline,
		// also in a member list requested before the ready and answered after it.
		const b = new LiveState();
		b.listed([{ username: 'alice', online: true }, { username: 'bob', online: true }, { username: 'carol', online: false }], b.seq);
		b.take('presence', { id: '3', user: 'dave', status: 'online' });
		const asked = b.seq;
		b.take('ready', { id: '9', user: 'me' });
		const atReady = onlineIn(b);
		b.take('presence', { id: '9', user: 'me', status: 'online' });
		b.take('presence', { id: '9', user: 'carol', status: 'online' });
		const snapshot = onlineIn(b);
		b.listed([{ username: 'alice', online: true }, { username: 'carol', online: false }], asked);
		const lateList = onlineIn(b);
		b.take('presence', { id: '9', user: 'carol', status: 'offline' });

		// Member counts carry the position too: repeats are applied, a repeated join is not.
		const c = new LiveState();
		const membersTook = [
			c.take('join', { id: '5', room: 'big', user: 'dave' }),
			c.take('members', { id: '5', room: 'big', members: 3, online: 1 }),
			c.take('members', { id: '5', room: 'big', members: 3, online: 2 }),
			c.take('ready', { id: '5', user: 'me' }),
			c.take('members', { id: '5', room: 'big', members: 3, online: 2 }),
			c.take('join', { id: '5', room: 'big', user: 'dave' }),
		];
		return {
			big: compareIds('9007199254740993', '9007199254740992'),
			order: tl.entries.map((e) => e.kind + ':' + e.id),
			held: tl.entries.length,
			oldest: tl.oldestMessageId(),
			trimmed,
			mentions: mentionsOf('hi @bob, mail x@example.com or @carol-2! @@dave (@eve)'),
			html: div.innerHTML,
			live: { presenceTook, presenceOnline: onlineIn(a), atReady, snapshot, lateList, afterOffline: onlineIn(b), membersTook },
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
		Live: liveResult{
			PresenceTook:   []bool{true, true, true, false, true},
			PresenceOnline: []string{"carol"},
			AtReady:        []string{},
			Snapshot:       []string{"carol", "me"},
			LateList:       []string{"carol", "me"},
			AfterOffline:   []string{"me"},
			MembersTook:    []bool{true, true, true, true, true, false},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("modules:\n got %+v\nwant %+v", got, want)
	}
}

// liveResult is what testModules reads back from static/js/live.js.
type liveResult struct {
	PresenceTook   []bool   `json:"presenceTook"`   // message 7, presence 7 ×2, message 7 again, presence 7
	PresenceOnline []string `json:"presenceOnline"` // who is online after those
	AtReady        []string `json:"atReady"`        // online right after a ready: nobody yet
	Snapshot       []string `json:"snapshot"`       // online after the snapshot that follows it
	LateList       []string `json:"lateList"`       // after a member list older than the ready
	AfterOffline   []string `json:"afterOffline"`   // after a live offline with the same id
	MembersTook    []bool   `json:"membersTook"`    // join 5, members 5 ×2, ready 5, members 5, join 5 again
}
