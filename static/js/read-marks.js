// Read markers: once the reader has settled on a room or conversation,
// its marker is set on the server up to the newest message shown there
// (state.js's toMark says which, if any); every device of the user then
// gets a `read` event. Never backwards, and a marker already on its way is
// not sent again. No DOM: unit tested with node
// (static/_test/controllers.test.mjs).
import { compareIds, lower } from './names.js';
import { toMark } from './state.js';

// browserTimers are the page's own; tests pass timers they run themselves.
// (Called as a method of an object, setTimeout throws "Illegal invocation".)
const browserTimers = { set: (fn, ms) => setTimeout(fn, ms), clear: (id) => clearTimeout(id) };

export const MARK_DELAY_MS = 800; // read markers are set once the reader has settled

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
  // timers: {set, clear}, setTimeout and clearTimeout by default.
  constructor({ api, state, onMarked, onSessionEnded, timers = browserTimers }) {
    this.api = api;
    this.state = state;
    this.onMarked = onMarked;
    this.onSessionEnded = onSessionEnded;
    this.timers = timers;
    this.supported = true; // false once the server turns out to have none
    this.timer = 0;
    this.sent = new Map(); // kind:lower name -> the marker id last sent
    this.generation = 0;
  }

  // reset forgets what was sent (a new session, or the data reloaded).
  reset() {
    this.sent = new Map();
    this.generation++;
  }

  // schedule sets the open view's marker after MARK_DELAY_MS, if it is
  // behind; the page calls it after every change of its state.
  schedule() {
    if (!this.supported || this.timer || !toMark(this.state())) return;
    this.timer = this.timers.set(() => this.mark(), MARK_DELAY_MS);
  }

  async mark() {
    this.timer = 0;
    const m = toMark(this.state());
    if (!m || !this.supported) return;
    const key = `${m.kind}:${lower(m.name)}`;
    const sent = this.sent.get(key);
    if (sent && compareIds(m.id, sent) <= 0) return; // on its way already
    this.sent.set(key, m.id);
    const generation = this.generation;
    const sentNow = this.sent;
    try {
      const answer = m.kind === 'room' ? await this.api.markRoom(m.name, m.id) : await this.api.markConversation(m.name, m.id);
      if (generation === this.generation) this.onMarked(answer);
    } catch (err) {
      if (sentNow.get(key) === m.id) sentNow.delete(key);
      if (withoutReadMarkers(err)) this.supported = false;
      else if (err.status === 401) this.onSessionEnded();
    }
  }
}
