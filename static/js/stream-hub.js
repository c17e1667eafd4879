// StreamHub owns the one event stream of a browser profile. It runs inside
// the SharedWorker (or, without SharedWorker, inside the leader tab) and
// hands every stream event to `emit`, which fans it out to the tabs.
//
// It reads the stream with fetch (see sse.js for why not EventSource) and
// reconnects by itself, passing the last event id as `last_event_id`, so
// the server resumes without a gap. How long it waits is reconnectDelay's
// business: after a `shutdown` the server's `retry:` is the earliest, and
// every browser picks its moment at random over the next seconds, so that a
// restarted server is not met by all its clients at once.
import { SSEParser } from './sse.js';

// After a shutdown: at least the server's retry:, then spread over this.
export const SHUTDOWN_SPREAD_MS = 5000;
export const DEFAULT_RETRY_MS = 1000;
// After an error: full jitter up to a cap that doubles per failed try.
const ERROR_BASE_MS = 1000;
const ERROR_CAP_MS = 30000;
const ERROR_FLOOR_MS = 250;

// reconnectDelay says how long to wait before the next try. why is
// 'shutdown' (the server said goodbye, with retry: retryMs) or 'error'
// (the stream failed or ended; failures counts the tries in a row that
// failed, the first being 1). notBeforeMs is a Retry-After, or 0. random
// is Math.random, or a stand-in in tests.
export function reconnectDelay({ why, retryMs = -1, failures = 1, notBeforeMs = 0 }, random = Math.random) {
  let delay;
  if (why === 'shutdown') {
    const floor = retryMs >= 0 ? retryMs : DEFAULT_RETRY_MS;
    delay = floor + random() * SHUTDOWN_SPREAD_MS;
  } else {
    const cap = Math.min(ERROR_CAP_MS, ERROR_BASE_MS * 2 ** Math.max(0, failures - 1));
    delay = Math.max(ERROR_FLOOR_MS, random() * cap);
  }
  return Math.max(delay, notBeforeMs);
}

export class StreamHub {
  // lastId resumes where a previous hub stopped (a new leader tab takes
  // over from the position the tabs had reached).
  constructor(emit, lastId = '') {
    this.emit = emit;
    this.ctrl = null; // the AbortController of the open (or opening) stream
    this.timer = 0;
    this.lastId = lastId;
    this.state = 'idle'; // idle | connecting | live | reconnecting
    this.user = '';
    this.failures = 0;
    this.wasLive = lastId !== '';
  }

  status() {
    return { type: 'status', state: this.state, user: this.user, lastId: this.lastId };
  }

  // command handles a request from a tab.
  command(cmd) {
    switch (cmd) {
      case 'start':
        if (!this.ctrl && !this.timer) this.open();
        else this.emit(this.status());
        break;
      case 'restart': // a login, maybe as another user: start afresh
        this.forget();
        this.open();
        break;
      case 'stop': // a logout: every tab goes back to the login form
        this.forget();
        this.setState('idle');
        this.emit({ type: 'signed-out' });
        break;
      case 'hello':
        this.emit(this.status());
        break;
      default:
        break;
    }
  }

  forget() {
    this.close();
    this.lastId = '';
    this.wasLive = false;
    this.user = '';
    this.failures = 0;
  }

  // kick retries at once after the device got its network back, instead
  // of sleeping out a back-off that grew while it was offline.
  kick() {
    if (!this.timer) return;
    clearTimeout(this.timer);
    this.timer = 0;
    this.failures = 0;
    this.open();
  }

  close() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = 0;
    if (this.ctrl) this.ctrl.abort();
    this.ctrl = null;
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit(this.status());
  }

  async open() {
    const ctrl = new AbortController();
    this.ctrl = ctrl;
    this.setState(this.wasLive ? 'reconnecting' : 'connecting');
    const url = this.lastId
      ? `/api/stream?last_event_id=${encodeURIComponent(this.lastId)}`
      : '/api/stream';
    let res;
    try {
      res = await fetch(url, {
        credentials: 'same-origin',
        cache: 'no-store',
        headers: { Accept: 'text/event-stream' },
        signal: ctrl.signal,
      });
    } catch {
      this.ended(ctrl, { why: 'error' });
      return;
    }
    if (ctrl !== this.ctrl) return;
    if (res.status === 401) {
      // The session ended (logged out elsewhere, expired): every tab goes
      // to the login form. Nothing else needs asking: the answer says so.
      this.ctrl = null;
      this.command('stop');
      return;
    }
    const type = res.headers.get('Content-Type') || '';
    if (!res.ok || !type.startsWith('text/event-stream') || !res.body) {
      // A 429 (too many streams) or 503 says when; a proxy's 502 does not.
      const after = Number(res.headers.get('Retry-After'));
      if (res.body) res.body.cancel().catch(() => {});
      this.ended(ctrl, { why: 'error', notBeforeMs: Number.isFinite(after) ? after * 1000 : 0 });
      return;
    }
    let goodbye = false;
    const parser = new SSEParser((ev) => {
      if (ctrl !== this.ctrl) return;
      if (this.onEvent(ev)) goodbye = true;
    });
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || ctrl !== this.ctrl) break;
        parser.feed(value);
        if (goodbye) break;
      }
    } catch {
      // The connection broke: the same as its end, below.
    }
    reader.cancel().catch(() => {});
    this.ended(ctrl, goodbye ? { why: 'shutdown', retryMs: parser.retry } : { why: 'error' });
  }

  // onEvent hands one event on and reports whether it was the server's
  // goodbye.
  onEvent(ev) {
    if (ev.id) this.lastId = ev.id;
    let data;
    try {
      data = JSON.parse(ev.data);
    } catch {
      return false; // the server only sends JSON; anything else is not ours to show
    }
    if (ev.type === 'ready') {
      this.failures = 0;
      this.user = data.user || '';
      this.wasLive = true;
      this.setState('live');
    }
    this.emit({ type: 'event', kind: ev.type, data, lastId: this.lastId });
    return ev.type === 'shutdown';
  }

  // ended schedules the next try after the stream of ctrl ended or failed.
  ended(ctrl, how) {
    if (ctrl !== this.ctrl) return; // closed on purpose, or replaced
    ctrl.abort();
    this.ctrl = null;
    this.setState(this.wasLive ? 'reconnecting' : 'connecting');
    if (how.why === 'error') this.failures++;
    const wait = reconnectDelay({ ...how, failures: this.failures });
    this.timer = setTimeout(() => {
      this.timer = 0;
      if (this.state !== 'idle') this.open();
    }, wait);
  }
}
