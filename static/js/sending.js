// Sending: the outbox (outbox.js) on its way to the server. What is typed
// is added here; flush sends it while the stream is live, one message at a
// time in the order typed, each with its own Idempotency-Key on every try.
// A try that did not reach the server, or that it could not take now (429,
// or a gateway's 502/503/504), is repeated with the same key: if the first
// try was stored after all, the server answers the repeat with the original
// event (200), which is a success like any 2xx. Any other answer, a 500
// too, is the server's answer to this message: it leaves the outbox and goes
// back to the writer (onRefused), so a message the server keeps failing
// does not hold up everything typed after it. No DOM: unit tested with node
// (static/_test/controllers.test.mjs).
import { Outbox } from './outbox.js';

// browserTimers are the page's own; tests pass timers they run themselves.
// (Called as a method of an object, setTimeout throws "Illegal invocation".)
const browserTimers = { set: (fn, ms) => setTimeout(fn, ms), clear: (id) => clearTimeout(id) };

export const RESEND_MS = 5000; // an unsent message is tried again this often while live

// retryable says whether a failed try is worth repeating with the same
// key: the server was not reached (0), asked us to slow down (429), or a
// proxy in front of it could not reach it or it was unavailable
// (502/503/504). Anything else, a 500 too, is its answer to this message.
export function retryable(err) {
  return err.status === 0 || err.status === 429 || err.status === 502 || err.status === 503 || err.status === 504;
}

// retryDelay is how long to wait before trying again after err: RESEND_MS,
// or longer when the answer's Retry-After says so.
export function retryDelay(err) {
  return Math.max(RESEND_MS, (err.retryAfter || 0) * 1000);
}

// wentPrivate: the answer to a room message is a private message ("@name
// text" in a room, which the server routes to name alone).
export function wentPrivate(ev) {
  return ev.to !== undefined && ev.room === undefined;
}

export class Sender {
  // api: {sendRoom(room, text, key), sendUser(user, text, key)}, each a
  //   promise of the stored event (an ApiError with .status on failure).
  // isLive(): the stream is live; flush waits for it otherwise.
  // onChange(): the outbox changed (redraw what is pending).
  // onSent(item, event): the server stored item as event.
  // onRefused(item, err): the server refused item.
  // timers: {set, clear}, setTimeout and clearTimeout by default.
  constructor({ api, isLive, onChange, onSent, onRefused, timers = browserTimers }) {
    this.api = api;
    this.isLive = isLive;
    this.onChange = onChange;
    this.onSent = onSent;
    this.onRefused = onRefused;
    this.timers = timers;
    this.outbox = new Outbox();
    this.resendTimer = 0;
    this.generation = 0; // bumped by clear: answers to an older one are dropped
  }

  add(kind, name, text) {
    const item = this.outbox.add(kind, name, text);
    this.onChange();
    this.flush();
    return item;
  }

  // pending lists what waits for a room ('room') or conversation ('user').
  pending(kind, name) {
    return this.outbox.for(kind, name);
  }

  // clear forgets everything (a logout, another user): an answer still on
  // its way is then dropped.
  clear() {
    this.outbox.clear();
    this.generation++;
  }

  // flush sends the outbox's messages one by one until it is empty, the
  // stream is not live, or a try has to be repeated later. The page calls
  // it again when the stream is live.
  async flush() {
    const item = this.outbox.next();
    if (!item || !this.isLive()) return;
    item.sending = true;
    this.onChange();
    const generation = this.generation;
    let ev;
    try {
      ev = item.kind === 'room'
        ? await this.api.sendRoom(item.name, item.text, item.key)
        : await this.api.sendUser(item.name, item.text, item.key);
    } catch (err) {
      item.sending = false;
      if (generation !== this.generation) return;
      if (retryable(err)) {
        this.onChange();
        this.timers.clear(this.resendTimer);
        this.resendTimer = this.timers.set(() => this.flush(), retryDelay(err));
        return;
      }
      this.outbox.remove(item.key);
      this.onChange();
      this.onRefused(item, err);
      this.flush();
      return;
    }
    if (generation !== this.generation) return;
    this.outbox.remove(item.key);
    this.onChange();
    if (ev && ev.id !== undefined) this.onSent(item, ev);
    this.flush();
  }
}
