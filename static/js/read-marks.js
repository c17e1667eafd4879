// Read markers: once the reader has settled on a room or conversation,
// its marker is set on the server up to the newest message shown there
// (state.js's toMark says which, if any: only while the page is visible and
// has the focus); every device of the user then gets a `read` event.
//
// Every mark that moves a marker is a durable write through the server's one
// ordered log, and in a large room every reader would mark every message: so
// marks are sparing. A view is marked MARK_DELAY_MS after it settles, then at
// most once per MARK_EVERY_MS (LARGE_MARK_EVERY_MS in a large room) while
// messages keep arriving; the newest message read is always marked in the
// end (trailing), even if the reader has moved on by then. Never a mark that
// does not move past the marker the page knows or one already on its way.
// No DOM: unit tested with node (static/_test/controllers.test.mjs).
import { compareIds, lower } from './names.js';
import { readOf, toMark } from './state.js';

// browserTimers are the page's own; tests pass timers they run themselves.
// (Called as a method of an object, setTimeout throws "Illegal invocation".)
const browserTimers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (id) => clearTimeout(id),
  now: () => performance.now(),
};

export const MARK_DELAY_MS = 800; // read markers are set once the reader has settled
export const MARK_EVERY_MS = 5000; // and then at most this often per view
export const LARGE_MARK_EVERY_MS = 30000; // or this often in a large room
// LARGE_ROOM: a room of more members than this is large even before its
// first `members` event (the server's default --large-room).
export const LARGE_ROOM = 100;

// markEvery is how often the view m ({kind, name}) may be marked in state s.
export function markEvery(s, m) {
  if (m.kind !== 'room') return MARK_EVERY_MS;
  const r = s.rooms.get(m.name);
  const large = !!r && (r.large || (r.count !== null && r.count > LARGE_ROOM));
  return large ? LARGE_MARK_EVERY_MS : MARK_EVERY_MS;
}

// withoutReadMarkers: the server answered as one that has no read markers
// (an older version): the counts are then kept on this page only.
export function withoutReadMarkers(err) {
  return err.status === 405 || (err.status === 404 && err.message.startsWith('no route'));
}

export class ReadMarks {
  // api: {markRoom(room, id), markConversation(user, id)}, each a promise
  //   of the answer {room|with, read, unread}.
  // state(): the page's state now (state.js).
  // onMarked(answer): the server moved a marker (dispatched as `marked`).
  // onSessionEnded(): a 401.
  // timers: {set, clear, now}, setTimeout, clearTimeout and
  //   performance.now by default.
  constructor({ api, state, onMarked, onSessionEnded, timers = browserTimers }) {
    this.api = api;
    this.state = state;
    this.onMarked = onMarked;
    this.onSessionEnded = onSessionEnded;
    this.timers = timers;
    this.supported = true; // false once the server turns out to have none
    this.views = new Map(); // kind:lower name -> view (see view)
    this.generation = 0;
  }

  // reset forgets what was sent and what waits (a new session, or the
  // data reloaded).
  reset() {
    for (const v of this.views.values()) this.timers.clear(v.timer);
    this.views = new Map();
    this.generation++;
  }

  view(key) {
    let v = this.views.get(key);
    if (!v) {
      // due: the mark to send when timer fires ({kind, name, id}, or null);
      // sent: the marker id last sent; at: when it was sent.
      v = { due: null, timer: 0, sent: '', at: -Infinity };
      this.views.set(key, v);
    }
    return v;
  }

  // schedule takes note of the open view's newest message read, if its
  // marker is behind, and has it marked when its time comes; the page
  // calls it after every change of its state.
  schedule() {
    if (!this.supported) return;
    const s = this.state();
    const m = toMark(s);
    if (!m) return;
    const key = `${m.kind}:${lower(m.name)}`;
    const v = this.view(key);
    if (v.sent && compareIds(m.id, v.sent) <= 0) return; // on its way already
    if (v.due && compareIds(m.id, v.due.id) <= 0) return; // waiting already
    v.due = m;
    if (v.timer) return;
    const wait = Math.max(MARK_DELAY_MS, v.at + markEvery(s, m) - this.timers.now());
    v.timer = this.timers.set(() => this.mark(key), wait);
  }

  async mark(key) {
    const v = this.views.get(key);
    if (!v) return;
    const m = v.due;
    v.timer = 0;
    v.due = null;
    if (!m || !this.supported) return;
    // The marker may have moved since (another device, a reload).
    const read = readOf(this.state(), m.kind, m.name);
    if (read === null || compareIds(m.id, read) <= 0) return;
    if (v.sent && compareIds(m.id, v.sent) <= 0) return;
    v.sent = m.id;
    v.at = this.timers.now();
    const generation = this.generation;
    try {
      const answer = m.kind === 'room' ? await this.api.markRoom(m.name, m.id) : await this.api.markConversation(m.name, m.id);
      if (generation === this.generation) this.onMarked(answer);
    } catch (err) {
      if (generation !== this.generation) return;
      if (v.sent === m.id) v.sent = '';
      if (withoutReadMarkers(err)) this.supported = false;
      else if (err.status === 401) this.onSessionEnded();
    }
  }
}
