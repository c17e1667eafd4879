// The messages of the rooms and conversations the page has opened: one
// Timeline (timeline.js) per view, fed by the stream (add) and by history
// pages fetched when a view opens and as its reader scrolls up (loadPage),
// drawn by the message view (views/messages.js) when it is the open one.
// A view that was never opened keeps no timeline: it loads its history when
// it is opened.
import { lower } from './names.js';
import { Timeline } from './timeline.js';

export const PAGE = 50; // messages per history page
export const KEEP = 1500; // entries a timeline keeps while its reader is at the newest end
const SCROLL_LOAD_PX = 120; // this near the top, the next older page is fetched

// historyEntry is the timeline entry of a message from a history page:
// private when it has a `to` and no `room`.
export function historyEntry(m) {
  const kind = m.to !== undefined && m.room === undefined ? 'private' : 'message';
  return { id: m.id, kind, data: m };
}

// timelineKey names the timeline a stream event goes into, or '' for none:
// a message of one of our rooms, a private message (keyed by the other
// party), a join or leave.
export function timelineKey(s, kind, data) {
  switch (kind) {
    case 'message':
      return s.rooms.has(data.room) ? `room:${data.room}` : '';
    case 'private': {
      const other = s.me !== '' && lower(data.from) === lower(s.me) ? data.to : data.from;
      return `user:${lower(other)}`;
    }
    case 'join':
    case 'leave':
      return `room:${data.room}`;
    default:
      return '';
  }
}

export class History {
  // view: the MessageView (views/messages.js).
  // api: {roomHistory(room, limit, before), userHistory(user, limit, before)}.
  // page: {me(), isMe(name), state(), viewKey(), title(), epoch(),
  //   dispatch(action), failed(err, show)}: what it needs of the page.
  constructor(view, api, page) {
    this.view = view;
    this.api = api;
    this.page = page;
    this.timelines = new Map(); // view key -> Timeline
  }

  reset() {
    this.timelines = new Map();
  }

  forget(key) {
    this.timelines.delete(key);
  }

  // show draws the timeline of the open view, key, starting one if none is
  // held, and loads its newest page if it has not been loaded.
  async show(key) {
    let tl = this.timelines.get(key);
    if (!tl) {
      tl = new Timeline();
      this.timelines.set(key, tl);
    }
    this.view.show(tl, this.page.me(), this.page.title());
    if (!tl.loaded) await this.loadPage(key, false);
  }

  // add puts an event into its view's timeline, if one is held.
  add(key, entry) {
    const tl = this.timelines.get(key);
    if (!tl) return;
    const i = tl.insert(entry);
    if (i < 0) return;
    const shown = this.page.viewKey() === key;
    const pinned = shown && this.view.atBottom();
    if (tl.entries.length > KEEP + 100 && (!shown || pinned)) {
      // Drop the oldest hundred; nobody is looking at them.
      const n = tl.trimOldest(tl.entries.length - KEEP);
      if (shown) {
        this.view.dropOldest(n);
        this.view.historyStatus(tl, this.page.title());
      }
    }
    if (!shown) return;
    const at = tl.entries.indexOf(entry);
    if (at < 0) return; // an old event, trimmed at once
    this.view.insert(at, entry, this.page.me());
    this.view.arrived(pinned, entry.data && this.page.isMe(entry.data.from), tl.entries[tl.entries.length - 1] === entry);
  }

  // loadPage fetches the newest page of the open view's history, or with
  // older the page before the oldest held.
  async loadPage(key, older) {
    const tl = this.timelines.get(key);
    const v = this.page.state().view;
    if (!tl || !v || this.page.viewKey() !== key || tl.loading) return;
    if (older && (!tl.loaded || !tl.hasMore)) return;
    const epoch = this.page.epoch();
    const title = this.page.title();
    tl.loading = true;
    this.view.historyStatus(tl, title);
    const before = older ? tl.oldestMessageId() : '';
    let msgs;
    try {
      const res = v.kind === 'room'
        ? await this.api.roomHistory(v.name, PAGE, before)
        : await this.api.userHistory(v.name, PAGE, before);
      msgs = (res && res.messages) || [];
    } catch (err) {
      tl.loading = false;
      if (epoch !== this.page.epoch()) return;
      this.page.failed(err, (m) => this.view.historyStatus(tl, title, `Could not load messages: ${m}`));
      return;
    }
    tl.loading = false;
    if (epoch !== this.page.epoch() || this.timelines.get(key) !== tl) return;
    tl.loaded = true;
    tl.hasMore = msgs.length >= PAGE;
    this.page.dispatch({ type: 'history', kind: v.kind, name: v.name, messages: msgs });
    const shown = this.page.viewKey() === key;
    const box = this.view.box;
    const fromBottom = box.scrollHeight - box.scrollTop;
    for (const m of msgs) {
      const entry = historyEntry(m);
      const i = tl.insert(entry);
      if (i >= 0 && shown) this.view.insert(i, entry, this.page.me());
    }
    if (!shown) return;
    this.view.historyStatus(tl, this.page.title());
    // Older page: keep what the reader looks at in place. Newest page: show the end.
    box.scrollTop = older ? box.scrollHeight - fromBottom : box.scrollHeight;
    if (tl.hasMore && box.scrollHeight <= box.clientHeight + SCROLL_LOAD_PX) this.loadPage(key, true);
  }

  onScroll() {
    if (this.page.state().view && this.view.box.scrollTop < SCROLL_LOAD_PX) this.loadPage(this.page.viewKey(), true);
    if (this.view.atBottom()) this.view.jump.hidden = true;
  }
}
