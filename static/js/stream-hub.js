// StreamHub owns the one EventSource of a browser profile. It runs inside the
// SharedWorker (or, without SharedWorker, inside the leader tab) and hands
// every stream event to `emit`, which fans it out to the tabs.
//
// It reconnects by itself instead of relying on EventSource's built-in retry:
// the built-in retry gives up for good on a 401 or a proxy's 502, and a new
// EventSource would forget its position. We keep the last event id and pass
// it as `last_event_id`, so the server resumes without a gap.

export const STREAM_KINDS = [
  'message', 'private', 'join', 'leave', 'presence', 'members', 'reset', 'ready', 'shutdown',
];

const MIN_DELAY_MS = 250;
const MAX_DELAY_MS = 8000;

export class StreamHub {
  // lastId resumes where a previous hub stopped (a new leader tab takes
  // over from the position the tabs had reached).
  constructor(emit, lastId = '') {
    this.emit = emit;
    this.es = null;
    this.timer = 0;
    this.lastId = lastId;
    this.state = 'idle'; // idle | connecting | live | reconnecting
    this.user = '';
    this.delay = MIN_DELAY_MS;
    this.wasLive = lastId !== '';
  }

  status() {
    return { type: 'status', state: this.state, user: this.user, lastId: this.lastId };
  }

  // command handles a request from a tab.
  command(cmd) {
    switch (cmd) {
      case 'start':
        if (!this.es && !this.timer) this.open();
        else this.emit(this.status());
        break;
      case 'restart': // a login, maybe as another user: start afresh
        this.close();
        this.lastId = '';
        this.wasLive = false;
        this.user = '';
        this.open();
        break;
      case 'stop': // a logout: every tab goes back to the login form
        this.close();
        this.lastId = '';
        this.wasLive = false;
        this.user = '';
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

  // kick retries at once after the device got its network back, instead
  // of sleeping out a back-off that grew while it was offline.
  kick() {
    if (!this.timer) return;
    clearTimeout(this.timer);
    this.timer = 0;
    this.delay = MIN_DELAY_MS;
    this.retry();
  }

  close() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = 0;
    if (this.es) this.es.close();
    this.es = null;
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.emit(this.status());
  }

  open() {
    const url = this.lastId
      ? `/api/stream?last_event_id=${encodeURIComponent(this.lastId)}`
      : '/api/stream';
    const es = new EventSource(url);
    this.es = es;
    for (const kind of STREAM_KINDS) {
      es.addEventListener(kind, (ev) => this.onEvent(es, kind, ev));
    }
    es.onerror = () => this.onError(es);
    this.setState(this.wasLive ? 'reconnecting' : 'connecting');
  }

  onEvent(es, kind, ev) {
    if (es !== this.es) return;
    if (ev.lastEventId) this.lastId = ev.lastEventId;
    let data;
    try {
      data = JSON.parse(ev.data);
    } catch {
      return; // the server only sends JSON; anything else is not ours to show
    }
    if (kind === 'ready') {
      this.delay = MIN_DELAY_MS;
      this.user = data.user || '';
      this.wasLive = true;
      this.setState('live');
    }
    this.emit({ type: 'event', kind, data, lastId: this.lastId });
    if (kind === 'shutdown') {
      // The server is going away on purpose; reconnect soon rather than
      // waiting for the socket to close.
      this.onError(es, MIN_DELAY_MS);
    }
  }

  onError(es, delay) {
    if (es !== this.es) return;
    es.close();
    this.es = null;
    this.setState(this.wasLive ? 'reconnecting' : 'connecting');
    const wait = delay ?? this.delay;
    this.delay = Math.min(this.delay * 2, MAX_DELAY_MS);
    // Jitter spreads the reconnects of many browsers after a restart.
    const jittered = wait * (0.8 + Math.random() * 0.4);
    this.timer = setTimeout(() => this.retry(), jittered);
  }

  async retry() {
    this.timer = 0;
    try {
      const res = await fetch('/api/me', { credentials: 'same-origin', cache: 'no-store' });
      if (res.status === 401) {
        this.command('stop');
        return;
      }
    } catch {
      // Server unreachable: open anyway; its error schedules the next try.
    }
    if (!this.es && !this.timer && this.state !== 'idle') this.open();
  }
}
